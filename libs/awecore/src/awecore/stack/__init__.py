"""The local stack: embedded PostgreSQL, the tansu broker and our services as processes."""

from ._broker import Broker
from ._ports import free_port, wait_for_port
from ._postgres import PostgresServer
from ._process import ServiceProcess, pid_alive
from ._stack import KEEP_ALIVE_SECONDS, PartStatus, Stack, StackSettings

__all__ = ["KEEP_ALIVE_SECONDS", "Broker", "PartStatus", "PostgresServer", "ServiceProcess",
           "Stack", "StackSettings", "free_port", "pid_alive", "wait_for_port"]
