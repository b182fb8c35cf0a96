"""
Worker processes on every core: with C{--workers N} the process C{twistd}
starts becomes a supervisor that binds (or adopts from systemd) every
listening socket once and runs N worker processes serving those very
sockets, each the same service as a single process would run.

 - L{options}: C{--workers} and what a plugin's options need to start
   workers (the command line they were parsed from);
 - L{supervisor}: the supervisor's service tree, built from a plugin's own
   C{makeService};
 - L{pool}: supervision (restart with backoff, crash loops, reload by
   generations, drain on stop);
 - L{channel}: what supervisor and workers say to each other;
 - L{worker} and L{workerside}: a worker process's entry point and service.
"""
