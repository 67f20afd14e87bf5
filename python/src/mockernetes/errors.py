"""The exceptions the package raises (API errors stay the client's
kubernetes.client.ApiException)."""


class MockernetesError(Exception):
    """Something the package or the server's test-control API refused."""


class BinaryNotFound(MockernetesError):
    """No mockernetes server binary was found."""


class ServerStartError(MockernetesError):
    """The server process did not start; the message carries its own error."""


class SettleTimeout(MockernetesError):
    """The cluster did not settle in time; the message names what was busy."""


class NotSupported(MockernetesError):
    """The server in use (a cluster given with server=) cannot do this."""
