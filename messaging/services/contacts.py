"""Adding and removing contacts: people beyond the care team a user may message and call."""

from django.db import transaction

from accounts.models import User
from messaging.models import Contact
from messaging.selectors import UserNotFound, contact_addable
from messaging.services.errors import CannotAddSelf, ContactNotFound


@transaction.atomic
def contact_add(*, owner: User, user_id) -> tuple[Contact, bool]:
    """Add someone ``owner`` may add (messaging.selectors ``contact_addable``); adding a contact
    twice changes nothing. ``(contact, created)``; anyone else is not found."""
    if str(user_id) == str(owner.pk):
        raise CannotAddSelf()
    person = contact_addable(user=owner).filter(pk=user_id).first()
    if person is None:
        raise UserNotFound()
    return Contact.objects.get_or_create(owner=owner, contact=person)


@transaction.atomic
def contact_remove(*, owner: User, user_id) -> None:
    """Remove an added contact. The care team is derived from sessions and cannot be removed."""
    removed, _ = Contact.objects.filter(owner=owner, contact_id=user_id).delete()
    if not removed:
        raise ContactNotFound()
