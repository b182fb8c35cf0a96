"""
Life under systemd: readiness and watchdog notifications, sockets passed by
socket activation, and a journald log observer.
"""
