"""Profile fields of me/: display name, preferred language, call defaults; the avatar upload,
its re-encoding without metadata, and who may fetch it."""

import io

import pytest
from PIL import Image

from accounts.models import User
from tests.accounts.helpers import (
    GPS_LATITUDE,
    ME,
    ME_AVATAR,
    avatar_upload,
    image_bytes,
    session_between,
    user_avatar_path,
)
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import DoctorFactory, PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _avatar_storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "avatars": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    return tmp_path


def _stored_files(root) -> list:
    return [path for path in root.rglob("*") if path.is_file()]


# --- Fields ---------------------------------------------------------------------------------


def test_a_new_account_has_the_defaults(patient_client, patient):
    body = patient_client.get(ME).json()

    assert body["display_name"] == patient.full_name
    assert body["avatar_url"] is None
    assert body["preferred_language"] is None
    assert (body["default_video_enabled"], body["default_audio_enabled"], body["auto_join_audio"]) == (True, True, True)


def test_the_user_changes_their_profile_fields(patient_client, patient):
    response = patient_client.patch(
        ME,
        {
            "display_name": "  Maggie ",
            "preferred_language": "de",
            "default_video_enabled": False,
            "default_audio_enabled": False,
            "auto_join_audio": False,
        },
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["display_name"] == "Maggie"
    assert body["preferred_language"] == "de"
    assert (body["default_video_enabled"], body["default_audio_enabled"], body["auto_join_audio"]) == (
        False,
        False,
        False,
    )
    patient.refresh_from_db()
    assert (patient.display_name, patient.default_video_enabled, patient.auto_join_audio) == ("Maggie", False, False)


def test_a_blank_display_name_shows_the_full_name_and_null_clears_the_language(patient_client, patient):
    patient_client.patch(ME, {"display_name": "Maggie", "preferred_language": "fr"})

    body = patient_client.patch(ME, {"display_name": "", "preferred_language": None}).json()

    assert body["display_name"] == patient.full_name
    assert body["preferred_language"] is None


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("preferred_language", "klingon", "invalid_choice"),
        ("preferred_language", "en-us", "invalid_choice"),
        ("default_video_enabled", "sometimes", "invalid"),
        ("display_name", "x" * 151, "max_length"),
    ],
)
def test_bad_profile_values_are_field_errors(patient_client, field, value, code):
    response = patient_client.patch(ME, {field: value})

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert [item["code"] for item in error["details"][field]] == [code]


def test_the_directory_shows_the_display_name(patient_client, doctor):
    User.objects.filter(pk=doctor.pk).update(display_name="Dr. Greg")

    body = patient_client.get(f"/api/v1/doctors/{doctor.pk}/").json()

    assert body["display_name"] == "Dr. Greg"


def test_anonymous_may_not_read_or_change_the_profile_or_avatar(anon_client, doctor):
    assert_error(anon_client.patch(ME, {"display_name": "X"}), 401, "NOT_AUTHENTICATED")
    assert_error(anon_client.put(ME_AVATAR, avatar_upload(image_bytes()), format="multipart"), 401, "NOT_AUTHENTICATED")
    assert_error(anon_client.get(user_avatar_path(doctor)), 401, "NOT_AUTHENTICATED")


# --- Avatar upload ----------------------------------------------------------------------------


def test_avatar_is_reencoded_upright_without_its_metadata(patient_client, patient, _avatar_storage):
    # given a photo carrying a GPS position, a camera model and a "turn 90°" orientation
    photo = image_bytes(size=(64, 48), gps=True)
    assert tuple(map(float, Image.open(io.BytesIO(photo)).getexif().get_ifd(0x8825)[2])) == GPS_LATITUDE

    # when it is uploaded as the avatar and fetched back
    response = patient_client.put(ME_AVATAR, avatar_upload(photo), format="multipart")
    assert response.status_code == 200, response.content
    url = response.json()["avatar_url"]
    assert url.startswith(user_avatar_path(patient) + "?v=")
    fetched = patient_client.get(url)

    # then the bytes are a fresh JPEG, stood upright, with no EXIF (no GPS, no camera) left
    assert fetched.status_code == 200
    assert fetched["Content-Type"] == "image/jpeg"
    assert fetched["X-Content-Type-Options"] == "nosniff"
    assert fetched["Cache-Control"].startswith("private")
    stored = Image.open(io.BytesIO(fetched.content))
    assert stored.format == "JPEG"
    assert stored.size == (48, 64)
    assert dict(stored.getexif()) == {}
    assert b"Exif" not in fetched.content and b"Secret Camera" not in fetched.content
    assert "icc_profile" not in stored.info


def test_a_large_avatar_is_scaled_down(patient_client, settings):
    settings.AVATAR_MAX_SIDE_PIXELS = 100

    url = patient_client.put(ME_AVATAR, avatar_upload(image_bytes(size=(400, 200))), format="multipart").json()[
        "avatar_url"
    ]

    assert Image.open(io.BytesIO(patient_client.get(url).content)).size == (100, 50)


def test_a_transparent_avatar_stays_png(patient_client):
    png = image_bytes(format="PNG", mode="RGBA")

    url = patient_client.put(ME_AVATAR, avatar_upload(png, "me.png", "image/png"), format="multipart").json()[
        "avatar_url"
    ]

    fetched = patient_client.get(url)
    assert fetched["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(fetched.content)).mode == "RGBA"


def test_replacing_and_removing_the_avatar_removes_the_files(
    patient_client, patient, _avatar_storage, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = patient_client.put(ME_AVATAR, avatar_upload(image_bytes()), format="multipart").json()["avatar_url"]
        second = patient_client.put(ME_AVATAR, avatar_upload(image_bytes(size=(10, 10))), format="multipart").json()[
            "avatar_url"
        ]
    assert first != second
    assert len(_stored_files(_avatar_storage)) == 1

    with django_capture_on_commit_callbacks(execute=True):
        response = patient_client.delete(ME_AVATAR)

    assert response.status_code == 204
    assert patient_client.get(ME).json()["avatar_url"] is None
    assert _stored_files(_avatar_storage) == []
    assert_error(patient_client.get(user_avatar_path(patient)), 404, "NOT_FOUND")
    assert patient_client.delete(ME_AVATAR).status_code == 204  # nothing left to remove


def test_the_type_is_read_from_the_bytes_not_the_name(patient_client, patient, _avatar_storage):
    pdf = b"%PDF-1.7\n" + b"0" * 200

    response = patient_client.put(ME_AVATAR, avatar_upload(pdf, "me.jpg", "image/jpeg"), format="multipart")

    error = assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert error["details"] == {"allowed": ["image/jpeg", "image/png", "image/webp"]}
    assert _stored_files(_avatar_storage) == []
    assert User.objects.get(pk=patient.pk).avatar == ""


def test_bytes_that_only_start_like_an_image_are_refused(patient_client, _avatar_storage):
    broken = image_bytes()[:40] + b"\x00" * 200

    response = patient_client.put(ME_AVATAR, avatar_upload(broken), format="multipart")

    assert_error(response, 400, "INVALID_IMAGE")
    assert _stored_files(_avatar_storage) == []


def test_an_avatar_over_the_limit_is_refused(patient_client, settings):
    settings.AVATAR_MAX_BYTES = 100

    response = patient_client.put(ME_AVATAR, avatar_upload(image_bytes(size=(200, 200))), format="multipart")

    error = assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert error["details"] == {"limit": 100}


def test_an_upload_without_a_file_is_a_field_error(patient_client):
    error = assert_error(patient_client.put(ME_AVATAR, {}, format="multipart"), 400, "VALIDATION_ERROR")
    assert set(error["details"]) == {"avatar"}


def test_a_json_body_is_refused(patient_client):
    assert_error(patient_client.put(ME_AVATAR, {"avatar": "x"}, format="json"), 415, "UNSUPPORTED_MEDIA_TYPE")


# --- Who may fetch it -------------------------------------------------------------------------


def _with_avatar(user) -> str:
    response = client_for(user).put(ME_AVATAR, avatar_upload(image_bytes()), format="multipart")
    assert response.status_code == 200, response.content
    return response.json()["avatar_url"]


def test_anyone_signed_in_sees_a_listed_doctors_avatar(patient_client, outsider_client, doctor):
    url = _with_avatar(doctor)

    assert patient_client.get(url).status_code == 200
    assert outsider_client.get(url).status_code == 200


def test_an_unlisted_doctors_avatar_is_not_found_for_patients(patient_client, staff_client):
    unverified = DoctorFactory(doctor_profile__is_verified=False)
    url = _with_avatar(unverified)

    assert_error(patient_client.get(url), 404, "NOT_FOUND")
    assert staff_client.get(url).status_code == 200
    assert client_for(unverified).get(url).status_code == 200


def test_a_patients_avatar_is_seen_by_their_doctor_staff_and_themselves_only(doctor, patient, staff_client):
    session_between(doctor=doctor, patient=patient)
    url = _with_avatar(patient)

    assert client_for(doctor).get(url).status_code == 200
    assert staff_client.get(url).status_code == 200
    assert client_for(patient).get(url).status_code == 200
    # another patient, and a doctor who never had a session with them
    assert_error(client_for(PatientFactory()).get(url), 404, "NOT_FOUND")
    assert_error(client_for(DoctorFactory()).get(url), 404, "NOT_FOUND")


def test_a_patient_sees_their_doctor_even_unlisted(doctor, patient):
    unlisted = DoctorFactory(doctor_profile__is_verified=False)
    session_between(doctor=unlisted, patient=patient)

    assert client_for(patient).get(_with_avatar(unlisted)).status_code == 200


def test_an_unknown_user_is_not_found(patient_client):
    assert_error(patient_client.get("/api/v1/users/00000000-0000-0000-0000-000000000000/avatar/"), 404, "NOT_FOUND")
