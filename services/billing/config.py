"""What billing is configured to do: on or off, grants, and the packages sold for Stars."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import NotFound
from core.settings import Settings, StarPackage


@dataclass(frozen=True, slots=True)
class BillingConfig:
    enabled: bool
    starting_grant: int
    daily_free: int
    packages: tuple[StarPackage, ...]
    secret_key: str = field(repr=False)  # signs invoice payloads

    @classmethod
    def from_settings(cls, settings: Settings) -> BillingConfig:
        return cls(
            enabled=settings.billing_enabled,
            starting_grant=settings.billing_starting_grant_micros,
            daily_free=settings.billing_daily_free_micros,
            packages=settings.billing_packages,
            secret_key=settings.secret_key_value(),
        )

    def package(self, package_id: str) -> StarPackage:
        for package in self.packages:
            if package.id == package_id:
                return package
        raise NotFound("There is no such package of credits", code="unknown_package")
