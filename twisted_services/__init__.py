"""
twisted-services: echo, chat, HTTP and temperature network services built on
Twisted's reactor and run by C{twistd}.

Each service is a package (L{twisted_services.echo} and friends) holding its
protocols, its client and its C{tap} module (the C{twistd} plugin's options
and service), over shared layers: L{twisted_services.core},
L{twisted_services.server}, L{twisted_services.systemd} and
L{twisted_services.clients}. L{twisted_services.testing} holds fakes for
testing them without a network.
"""

__version__ = "0.1.0"
