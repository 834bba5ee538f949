"""Secrets kept at rest encrypted (assistants' bot tokens): Fernet, authenticated encryption
with a key from the settings."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken


class TokenCipher:
    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except ValueError as error:
            raise ValueError("not a Fernet key (32 url-safe base64-encoded bytes)") from error

    def encrypt(self, token: str) -> bytes:
        return self._fernet.encrypt(token.encode())

    def decrypt(self, ciphertext: bytes) -> str | None:
        """None when the ciphertext was not made with this key (the key was changed)."""
        try:
            return self._fernet.decrypt(ciphertext).decode()
        except InvalidToken:
            return None
