"""Call reads, each scoped to who asks (see ``calls.call_list_for_user``)."""
