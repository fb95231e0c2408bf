from django.urls import include, path

urlpatterns = [path("", include("fingerprint_attendance.urls"))]
