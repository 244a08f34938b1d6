from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.conversations import views as conversation_views

urlpatterns = [
    path("", include("apps.core.urls")),
    path("admin/", admin.site.urls),
    path("console/", include("apps.tickets.urls")),
    path("api/", include("apps.knowledge.urls")),
    path("api/widget/", include("apps.conversations.urls")),
    path("v1/", include("apps.conversations.openai_urls")),
    path("widget.js", conversation_views.widget_js, name="widget-js"),
    path("demo/", conversation_views.demo_shop, name="demo-shop"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
