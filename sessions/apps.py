from django.apps import AppConfig


class ConsultationsConfig(AppConfig):
    """Booked consultations between a doctor and a patient.

    The Python package is ``sessions`` (the domain's word), but ``django.contrib.sessions``
    already owns that app label, so this app's label is ``consultations``.
    """

    name = "sessions"
    label = "consultations"
    verbose_name = "Consultation sessions"
    default_auto_field = "django.db.models.BigAutoField"
