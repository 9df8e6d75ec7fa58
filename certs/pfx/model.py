"""What reading a PKCS#12 file finds: its protections, MAC, containers and bags."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from certs.pfx.problems import Problem

KEY_BAG = "key_bag"
SHROUDED_KEY_BAG = "pkcs8_shrouded_key_bag"
CERT_BAG = "cert_bag"
SAFE_CONTENTS = "safe_contents"
MAX_NESTING = 4


@dataclass(frozen=True)
class Protection:
    """How a container or key bag is encrypted, as the file declares it."""

    algorithm: str
    cipher: str
    iterations: int
    weak: bool
    scheme: str = field(default="", repr=False, compare=False)
    hash_name: str = field(default="", repr=False, compare=False)
    salt: bytes = field(default=b"", repr=False, compare=False)
    key_length: int = field(default=0, repr=False, compare=False)
    cipher_name: str = field(default="", repr=False, compare=False)
    mode: str = field(default="", repr=False, compare=False)
    iv: bytes = field(default=b"", repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "cipher": self.cipher, "iterations": self.iterations}


@dataclass(frozen=True)
class Mac:
    hash_name: str
    digest: bytes
    salt: bytes
    iterations: int

    def to_json(self) -> dict[str, Any]:
        return {"algorithm": f"hmac-{self.hash_name}", "iterations": self.iterations}


class Bag:
    """One SafeBag: its kind and (for a shrouded key) its protection, known when the file is read.

    ``value()`` is what opening uses: the PrivateKeyInfo DER of a key bag, the encrypted key of a
    shrouded key bag, the X.509 DER of a certificate bag (None for other certificate types).
    """

    __slots__ = ("_value", "children", "kind", "protection")

    def __init__(
        self,
        kind: str,
        value: bytes | None = None,
        *,
        protection: Protection | None = None,
        children: list[Bag] | None = None,
    ) -> None:
        self.kind = kind
        self.protection = protection
        self.children: list[Bag] = children or []
        self._value = value

    def value(self) -> bytes | None:
        return self._value


@dataclass
class Container:
    protection: Protection | None  # None: plain data
    ciphertext: bytes = b""
    bags: list[Bag] = field(default_factory=list)
    der: bytes = b""  # the ContentInfo as found in the file


@dataclass
class Structure:
    data: bytes
    auth_safe: bytes
    mac: Mac | None
    containers: list[Container]
    key_protections: list[Protection | None]
    warnings: list[Problem]

    @property
    def kdf(self) -> Protection | None:
        """What protects the private key (the first key bag seen)."""
        for protection in self.key_protections:
            return protection
        return None

    @property
    def visible_key_bags(self) -> int:
        return len(self.key_protections)


def key_protections(bags: list[Bag]) -> list[Protection | None]:
    """The key bags' protections in file order (None: a plain key bag)."""
    found: list[Protection | None] = []
    for bag in bags:
        if bag.kind == KEY_BAG:
            found.append(None)
        elif bag.kind == SHROUDED_KEY_BAG:
            found.append(bag.protection)
        elif bag.kind == SAFE_CONTENTS:
            found += key_protections(bag.children)
    return found


def structure_warnings(
    containers: list[Container], keys: list[Protection | None], der: bool
) -> list[Problem]:
    warnings: list[Problem] = []
    protections = [c.protection for c in containers] + keys
    if any(p is None or p.weak for p in keys) or any(p and p.weak for p in protections):
        warnings.append(Problem.of("weak_encryption"))
    if not der:
        warnings.append(Problem.of("not_der"))
    return warnings
