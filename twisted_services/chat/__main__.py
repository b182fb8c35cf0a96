"""C{python -m twisted_services.chat}: the chat client."""

from twisted_services.chat.client import main

main()
