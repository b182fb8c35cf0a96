"""
A UDP temperature converter: L{TemperatureProtocol} and the pure
L{convert}; the client is C{python -m twisted_services.temperature}.
"""

from twisted_services.temperature.conversion import convert
from twisted_services.temperature.protocol import TemperatureProtocol

__all__ = ["TemperatureProtocol", "convert"]
