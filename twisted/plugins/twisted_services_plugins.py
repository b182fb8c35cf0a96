"""
twistd dropin for twisted-services: one L{ServiceMaker} per service.

L{ServiceMaker} imports the named tap module only when its subcommand runs,
so a broken service cannot break C{twistd --help}.
"""

from twisted.application.service import ServiceMaker

echo = ServiceMaker(
    "twisted-services echo",
    "twisted_services.echo.tap",
    "TCP (and optional UDP) echo server, RFC 862.",
    "echo",
)

chat = ServiceMaker(
    "twisted-services chat",
    "twisted_services.chat.tap",
    "Multi-user line chat server with rooms, safe with hostile clients.",
    "chat",
)

http = ServiceMaker(
    "twisted-services http",
    "twisted_services.http.tap",
    "Minimal, fast HTTP/1.1 responder.",
    "http",
)

temperature = ServiceMaker(
    "twisted-services temperature",
    "twisted_services.temperature.tap",
    "UDP temperature converter (Celsius, Fahrenheit, Kelvin), safe against reflection.",
    "temperature",
)

services = ServiceMaker(
    "twisted-services services",
    "twisted_services.services.tap",
    "All four services in one process: echo, chat, http and temperature.",
    "services",
)
