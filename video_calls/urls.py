from video_calls.apis.calls import urlpatterns as call_urlpatterns
from video_calls.apis.history import urlpatterns as history_urlpatterns

urlpatterns = [*history_urlpatterns, *call_urlpatterns]
