from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.orders.carriers import CarrierError
from apps.orders.models import Customer, Order, Shipment
from apps.orders.services import shipment_track


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "external_id", "email", "phone", "preferred_language"]
    list_filter = ["preferred_language"]
    search_fields = ["name", "external_id", "email", "phone"]
    readonly_fields = ["created_at", "updated_at"]


class ShipmentInline(admin.TabularInline):
    model = Shipment
    extra = 0
    fields = [
        "carrier_code",
        "tracking_number",
        "status",
        "promised_delivery_date",
        "last_scan_at",
        "last_checked_at",
    ]
    readonly_fields = ["last_scan_at", "last_checked_at"]
    show_change_link = True


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["number", "customer", "status", "total", "currency", "placed_at"]
    list_filter = ["status", "currency"]
    search_fields = ["number", "customer__name", "customer__external_id", "contact_email", "contact_phone"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]
    date_hierarchy = "placed_at"
    readonly_fields = ["created_at", "updated_at"]
    inlines = [ShipmentInline]


@admin.register(Shipment)
class ShipmentAdmin(admin.ModelAdmin):
    list_display = [
        "tracking_number",
        "carrier_code",
        "order",
        "status",
        "promised_delivery_date",
        "last_scan_at",
        "last_scan_place",
        "last_checked_at",
    ]
    list_filter = ["status", "carrier_code"]
    search_fields = ["tracking_number", "order__number"]
    list_select_related = ["order"]
    autocomplete_fields = ["order"]
    readonly_fields = [
        "last_checked_at",
        "last_scan_at",
        "last_scan_place",
        "last_scan_status",
        "created_at",
        "updated_at",
    ]
    actions = ["track_now"]

    @admin.action(description="Ask the carrier now (and show anomalies)")
    def track_now(self, request: HttpRequest, queryset: QuerySet[Shipment]) -> None:
        for shipment in queryset.select_related("order")[:20]:
            try:
                result = shipment_track(shipment=shipment)
            except CarrierError as exc:
                self.message_user(request, f"{shipment}: {type(exc).__name__}: {exc}", level=messages.ERROR)
                continue
            anomalies = ", ".join(anomaly.code.value for anomaly in result.anomalies) or "none"
            self.message_user(request, f"{shipment}: {result.tracking.status.value}; anomalies: {anomalies}")
