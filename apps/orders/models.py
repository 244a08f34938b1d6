"""The shop's customers, their orders and the orders' shipments.

A ``Customer`` is the shop's own customer record (not a Django account): the
shop's site knows it by ``external_id``, and a widget conversation carries that id
only when the shop's server signed it (``Conversation.verified_customer_id``).
A ``Shipment`` caches what the carrier last said (``last_scan_*``); the carrier
stays the source of truth and is asked again by ``services.shipment_track``.
"""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models


class Customer(models.Model):
    class Language(models.TextChoices):
        ENGLISH = "en", "English"
        CHINESE = "zh", "中文"

    external_id = models.CharField(max_length=200, unique=True, help_text="The shop site's customer id.")
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    preferred_language = models.CharField(max_length=8, choices=Language.choices, default=Language.ENGLISH)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["email"], name="orders_customer_email")]

    def __str__(self) -> str:
        return f"{self.name} ({self.external_id})"


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        PAID = "paid"
        SHIPPED = "shipped"
        DELIVERED = "delivered"
        CANCELLED = "cancelled"
        RETURNED = "returned"

    number = models.CharField(
        max_length=32, unique=True, help_text="The shop's order number, e.g. DS20240501."
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    # The contact details given at checkout: what a customer without a verified identity
    # must repeat to prove the order is theirs (``selectors.order_for_customer``).
    contact_email = models.EmailField(blank=True)
    contact_phone = models.CharField(max_length=40, blank=True)
    # [{"sku": "LH-DUV-Q", "name": "Linen duvet cover (queen)", "quantity": 1, "unit_price": "89.00"}]
    items = models.JSONField(default=list, blank=True)
    total = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, help_text="ISO 4217 code, e.g. CNY, USD.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    placed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-placed_at"]
        indexes = [models.Index(fields=["customer", "-placed_at"], name="orders_order_customer_placed")]
        constraints = [
            models.CheckConstraint(condition=models.Q(total__gte=0), name="orders_order_total_not_negative"),
        ]

    def __str__(self) -> str:
        return self.number


class Shipment(models.Model):
    # The same vocabulary as ``carriers.TrackingStatus`` (plus ``pending``: no label scanned yet).
    class Status(models.TextChoices):
        PENDING = "pending"
        INFO_RECEIVED = "info_received"
        IN_TRANSIT = "in_transit"
        OUT_FOR_DELIVERY = "out_for_delivery"
        DELIVERED = "delivered"
        EXCEPTION = "exception"
        LOST = "lost"
        RETURNED_TO_SENDER = "returned_to_sender"
        UNKNOWN = "unknown"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="shipments")
    carrier_code = models.CharField(max_length=32, help_text="e.g. sf-express, dhl, ups.")
    tracking_number = models.CharField(max_length=64)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.PENDING)
    promised_delivery_date = models.DateField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    # What the carrier said the last time we asked (``services.shipment_track``).
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_scan_at = models.DateTimeField(null=True, blank=True)
    last_scan_place = models.CharField(max_length=200, blank=True)
    last_scan_status = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["carrier_code", "tracking_number"], name="orders_shipment_unique_tracking"
            ),
        ]
        indexes = [
            models.Index(fields=["tracking_number"], name="orders_shipment_tracking"),
            models.Index(fields=["status", "last_checked_at"], name="orders_shipment_status_checked"),
        ]

    def __str__(self) -> str:
        return f"{self.carrier_code} {self.tracking_number}"
