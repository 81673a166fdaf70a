"""One place that imports every domain's models, so metadata is complete for Alembic."""


def import_all_models() -> None:
    from doorwarden import scheduler_models as _scheduler  # noqa: F401, PLC0415
    from doorwarden.accounts import models as _accounts  # noqa: F401, PLC0415
    from doorwarden.agencies import models as _agencies  # noqa: F401, PLC0415
    from doorwarden.agencies.governance import models as _governance  # noqa: F401, PLC0415
    from doorwarden.audit import log_models as _audit_log  # noqa: F401, PLC0415
    from doorwarden.audit import models as _audit  # noqa: F401, PLC0415
    from doorwarden.clips import models as _clips  # noqa: F401, PLC0415
    from doorwarden.devices import key_history_models as _key_history  # noqa: F401, PLC0415
    from doorwarden.devices import models as _devices  # noqa: F401, PLC0415
    from doorwarden.devices.settings import models as _camera_settings  # noqa: F401, PLC0415
    from doorwarden.events import models as _events  # noqa: F401, PLC0415
    from doorwarden.households import membership_models as _membership  # noqa: F401, PLC0415
    from doorwarden.households import models as _households  # noqa: F401, PLC0415
    from doorwarden.integrations.webhooks import models as _webhooks  # noqa: F401, PLC0415
    from doorwarden.keyring import models as _keyring  # noqa: F401, PLC0415
    from doorwarden.legal import models as _legal  # noqa: F401, PLC0415
    from doorwarden.legal.community import models as _community  # noqa: F401, PLC0415
    from doorwarden.legal.disclosure import models as _packages  # noqa: F401, PLC0415
    from doorwarden.modes import models as _modes  # noqa: F401, PLC0415
    from doorwarden.notify import models as _notify  # noqa: F401, PLC0415
    from doorwarden.notify import push_models as _push  # noqa: F401, PLC0415
    from doorwarden.transparency import models as _transparency  # noqa: F401, PLC0415
