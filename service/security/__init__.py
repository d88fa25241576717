"""Security of the service: client JWT wiring, CORS, Redis replay cache, settings.

``install_security`` lives in :mod:`service.security.install` and is not re-exported
here: :mod:`service.settings` imports this package's settings, and the installer
imports :mod:`service.settings`.
"""

from service.security.settings import AuthSettings, CorsSettings, TrustedIssuerSettings, security_production_problems

__all__ = ["AuthSettings", "CorsSettings", "TrustedIssuerSettings", "security_production_problems"]
