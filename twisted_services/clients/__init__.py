"""
What the command-line clients share: client endpoints with TLS
verification, terminal input and output, and one runner for C{main()}.
"""
