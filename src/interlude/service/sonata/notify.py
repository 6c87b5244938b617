"""The Sonata APIs that notify, described once for the hub and the outbox (see :mod:`~interlude.service.platform.hub`).

The buyer serves the notification APIs; the seller posts each event to
``{callback}{listener_base}/listener/{eventType}`` from the same durable outbox as the Interlude events.
The catalog and address hubs take registrations like the others; their events would report a catalog that
changed (it changes only with the topology) and deferred address validations (every validation is
immediate), so none is sent today.
"""

from __future__ import annotations

from interlude.service.platform.hub import NotifyingApi, register_api

POQ_BASE = "/mefApi/sonata/productOfferingQualification/v8"
QUOTE_BASE = "/mefApi/sonata/quoteManagement/v10"
ORDER_BASE = "/mefApi/sonata/productOrderingManagement/v11"
INVENTORY_BASE = "/mefApi/sonata/productInventory/v8"
CATALOG_BASE = "/mefApi/sonata/productCatalog/v4"
ADDRESS_BASE = "/mefApi/sonata/geographicAddressManagement/v8"
SITE_BASE = "/mefApi/sonata/geographicSiteManagement/v8"

SONATA_POQ = register_api(
    NotifyingApi(
        "sonataPoq",
        "/mefApi/sonata/productOfferingQualificationNotification/v8",
        frozenset({"poqStateChangeEvent", "poqItemStateChangeEvent"}),
    )
)
SONATA_QUOTE = register_api(
    NotifyingApi(
        "sonataQuote",
        "/mefApi/sonata/quoteNotification/v10",
        frozenset({"quoteStateChangeEvent", "quoteItemStateChangeEvent"}),
    )
)
SONATA_ORDER = register_api(
    NotifyingApi(
        "sonataProductOrder",
        "/mefApi/sonata/productOrderingNotification/v11",
        frozenset(
            {
                "productOrderStateChangeEvent",
                "productOrderItemStateChangeEvent",
                "productOrderItemExpectedCompletionDateSetEvent",
                "productSpecificProductOrderItemMilestoneEvent",
                "cancelProductOrderStateChangeEvent",
                "chargeCreateEvent",
                "chargeStateChangeEvent",
                "chargeTimeoutEvent",
                "modifyProductOrderItemRequestedDeliveryDateStateChangeEvent",
            }
        ),
    )
)
SONATA_CATALOG = register_api(
    NotifyingApi(
        "sonataCatalog",
        "/mefApi/sonata/productCatalogNotifications/v4",
        frozenset(
            {
                "categoryCreateEvent",
                "categoryAttributeValueChangeEvent",
                "productOfferingCreateEvent",
                "productOfferingAttributeValueChangeEvent",
                "productOfferingStateChangeEvent",
                "productSpecificationCreateEvent",
                "productSpecificationAttributeValueChangeEvent",
                "productSpecificationStateChangeEvent",
            }
        ),
    )
)
SONATA_ADDRESS = register_api(
    NotifyingApi(
        "sonataAddress",
        "/mefApi/sonata/geographicAddressNotification/v8",
        frozenset({"geographicAddressValidationStateChangeEvent"}),
    )
)
