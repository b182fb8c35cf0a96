"""
twisted-services: echo, chat, HTTP and temperature network services built on
Twisted's reactor and run by C{twistd}.

Each service is a protocol and factory in its own module (L{twisted_services.echo}
and friends), a C{twistd} plugin whose options live in L{twisted_services.tap},
and a set of fakes in L{twisted_services.testing} for testing it without a
network.
"""

__version__ = "0.1.0"
