"""
Pure pieces every layer may use: address formatting, token buckets,
throttled reports, bounded line framing. Nothing here imports another
layer of this package.
"""
