"""
The C{twistd} side of each service: its C{Options} and C{makeService}, and
nothing else. The dropin in C{twisted/plugins/} names these modules.
"""
