"""C{python -m twisted_services.temperature}: the temperature client."""

from twisted_services.temperature.client import main

main()
