"""
Prometheus metrics for every service: plain-integer counters the protocols
bump on their hot paths (L{counters}), the metric families built from them at
scrape time (L{families}), and the C{--metrics} listener that renders the
exposition on the reactor thread (L{exposition}).
"""
