"""C{python -m twisted_services.echo}: the echo client."""

from twisted_services.echo.client import main

main()
