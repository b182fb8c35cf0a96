"""
The combined C{twistd services} plugin: every service in one process.
"""
