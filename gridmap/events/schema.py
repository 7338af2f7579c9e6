"""Event vocabularies: columns, categories, sources, statuses and the six-step loop.

Every table here is a plain dict that can be extended at run time (for example
``EVENT_COLUMNS["受理时间"] = "reported_at"``).
"""

from __future__ import annotations

import re

__all__ = [
    "CANONICAL_COLUMNS",
    "CATEGORIES",
    "CATEGORY_VALUES",
    "DEFAULT_TZ",
    "EVENT_COLUMNS",
    "MISSING_STRINGS",
    "OPEN_STATUSES",
    "REJECT_REASONS",
    "SOURCES",
    "SOURCE_VALUES",
    "STATUS_LABELS",
    "STATUS_VALUES",
    "STEPS",
    "TIME_COLUMNS",
    "norm_key",
]

#: Time zone given to times without an offset (China Standard Time, no DST).
DEFAULT_TZ = "Asia/Shanghai"

#: Header (any case; spaces and hyphens count as ``_``) -> canonical event column.
#: Extend it at run time (``EVENT_COLUMNS["受理时间"] = "reported_at"``) or pass
#: ``columns=`` to :func:`read_events`.
EVENT_COLUMNS: dict[str, str] = {
    # event_id
    "event_id": "event_id",
    "事件编号": "event_id",
    "事件id": "event_id",
    "事件编码": "event_id",
    "工单号": "event_id",
    "工单编号": "event_id",
    "编号": "event_id",
    "id": "event_id",
    "eventid": "event_id",
    "case_id": "event_id",
    "ticket_id": "event_id",
    # reported_at
    "reported_at": "reported_at",
    "上报时间": "reported_at",
    "发现时间": "reported_at",
    "登记时间": "reported_at",
    "时间": "reported_at",
    "datetime": "reported_at",
    "date_time": "reported_at",
    "time": "reported_at",
    "timestamp": "reported_at",
    "report_time": "reported_at",
    "reported": "reported_at",
    "created_at": "reported_at",
    # category
    "category": "category",
    "事件类型": "category",
    "事件类别": "category",
    "事项类型": "category",
    "类型": "category",
    "类别": "category",
    "type": "category",
    "event_type": "category",
    # source
    "source": "source",
    "来源": "source",
    "事件来源": "source",
    "上报来源": "source",
    "上报渠道": "source",
    "channel": "source",
    # status
    "status": "status",
    "状态": "status",
    "办理状态": "status",
    "办结状态": "status",
    "state": "status",
    # deadline
    "deadline": "deadline",
    "办结时限": "deadline",
    "办理时限": "deadline",
    "截止时间": "deadline",
    "时限": "deadline",
    "due": "deadline",
    "due_at": "deadline",
    "due_date": "deadline",
    # closed_at
    "closed_at": "closed_at",
    "办结时间": "closed_at",
    "结案时间": "closed_at",
    "完成时间": "closed_at",
    "关闭时间": "closed_at",
    "close_time": "closed_at",
    "closed_time": "closed_at",
    "resolved_at": "closed_at",
    "completed_at": "closed_at",
    # coordinates
    "lon": "lon",
    "经度": "lon",
    "lng": "lon",
    "long": "lon",
    "longitude": "lon",
    "lat": "lat",
    "纬度": "lat",
    "latitude": "lat",
    "x": "x",
    "x坐标": "x",
    "横坐标": "x",
    "easting": "x",
    "y": "y",
    "y坐标": "y",
    "纵坐标": "y",
    "northing": "y",
}

#: The seven Fujin service categories: code -> Chinese name.
CATEGORIES: dict[str, str] = {
    "information_collection": "信息采集",
    "opinion_survey": "民意调查",
    "policy_publicity": "政策宣传",
    "key_population": "重点人群服务",
    "errand_service": "代办服务",
    "safety_hazard": "安全隐患排查",
    "dispute_mediation": "矛盾纠纷调解",
}

#: Category value as written in sources (normalised) -> category code.
CATEGORY_VALUES: dict[str, str] = {
    **{code: code for code in CATEGORIES},
    **{name: code for code, name in CATEGORIES.items()},
    "民意收集": "opinion_survey",
    "重点人群": "key_population",
    "代办": "errand_service",
    "安全隐患": "safety_hazard",
    "隐患排查": "safety_hazard",
    "矛盾纠纷": "dispute_mediation",
    "纠纷调解": "dispute_mediation",
    "key_population_service": "key_population",
    "key_population_services": "key_population",
    "errand": "errand_service",
    "errand_services": "errand_service",
    "safety_hazard_check": "safety_hazard",
    "safety_hazard_checks": "safety_hazard",
    "hazard": "safety_hazard",
    "dispute": "dispute_mediation",
    "mediation": "dispute_mediation",
    "survey": "opinion_survey",
    "publicity": "policy_publicity",
}

#: Report sources: code -> Chinese name.
SOURCES: dict[str, str] = {"grid_worker": "网格员", "resident": "居民随手拍"}

#: Source value as written in sources (normalised) -> source code.
SOURCE_VALUES: dict[str, str] = {
    "grid_worker": "grid_worker",
    "gridworker": "grid_worker",
    "worker": "grid_worker",
    "网格员": "grid_worker",
    "网格员上报": "grid_worker",
    "网格员巡查": "grid_worker",
    "巡查": "grid_worker",
    "resident": "resident",
    "residents": "resident",
    "citizen": "resident",
    "public": "resident",
    "随手拍": "resident",
    "居民": "resident",
    "居民上报": "resident",
    "居民随手拍": "resident",
    "群众": "resident",
    "群众上报": "resident",
    "市民": "resident",
}

#: The six steps of the event loop (上报 → 受理 → 分派 → 处置 → 反馈 → 办结), in order.
STEPS: tuple[str, ...] = ("reported", "accepted", "assigned", "handled", "feedback", "closed")

#: Chinese and English names of the steps and of the other statuses.
STATUS_LABELS: dict[str, tuple[str, str]] = {
    "reported": ("上报", "reported"),
    "accepted": ("受理", "accepted"),
    "assigned": ("分派", "assigned"),
    "handled": ("处置", "handled"),
    "feedback": ("反馈", "feedback"),
    "closed": ("办结", "closed"),
    "open": ("办理中", "open"),
    "cancelled": ("已撤销", "cancelled"),
    "unknown": ("状态不明", "unknown"),
}

#: Statuses of an event that is still being worked on (counted as ``open``). ``open``
#: is the status of an event whose step is not tracked (older files and clients).
OPEN_STATUSES: frozenset[str] = frozenset(("open", *STEPS[:-1]))

#: Status value as written in sources (normalised) -> status code: one of
#: :data:`STEPS`, ``open`` (in progress, step not known) or ``cancelled``. Values not
#: listed are kept as given and, like a missing status, count as ``unknown``.
STATUS_VALUES: dict[str, str] = {
    **dict.fromkeys(
        [
            "closed", "close", "done", "resolved", "completed", "complete", "finished",
            "已办结", "办结", "已结案", "结案", "已完成", "完成", "已关闭", "关闭", "已处理",
            "处理完成", "已解决",
        ],
        "closed",
    ),
    **dict.fromkeys(
        [
            "open", "pending", "in_progress", "processing", "办理中", "处理中", "待办",
            "待处理", "待办理", "未办结", "未处理", "未完成", "受理中", "待核查", "核查中",
        ],
        "open",
    ),
    **dict.fromkeys(["reported", "new", "上报", "已上报", "待受理"], "reported"),
    **dict.fromkeys(["accepted", "受理", "已受理", "待分派", "待派遣"], "accepted"),
    **dict.fromkeys(
        ["assigned", "dispatched", "分派", "已分派", "已派遣", "派遣中", "已派单", "待处置"],
        "assigned",
    ),
    **dict.fromkeys(["handled", "处置", "已处置", "处置完成", "待反馈"], "handled"),
    **dict.fromkeys(["feedback", "反馈", "已反馈", "待办结", "待评价"], "feedback"),
    **dict.fromkeys(
        ["cancelled", "canceled", "withdrawn", "void", "已撤销", "撤销", "作废", "已作废"],
        "cancelled",
    ),
}  # fmt: skip

#: Reasons a row lands in the rejects table, in the order they are checked.
REJECT_REASONS: dict[str, str] = {
    "bad_coordinate": "coordinate missing, not numeric, out of range, (0, 0) or not a point",
    "bad_time": "reported_at missing or unparseable, or deadline/closed_at unparseable",
    "closed_before_report": "closed_at earlier than reported_at",
    "outside_plan": "point outside every grid of the plan",
}

#: Canonical event columns (the targets of :data:`EVENT_COLUMNS`).
CANONICAL_COLUMNS = (
    "event_id",
    "reported_at",
    "category",
    "source",
    "status",
    "deadline",
    "closed_at",
    "lon",
    "lat",
    "x",
    "y",
)
#: Time columns of an event.
TIME_COLUMNS = ("reported_at", "deadline", "closed_at")
#: Cell values that mean "missing".
MISSING_STRINGS = ["", "nan", "NaN", "NaT", "None", "none", "null", "NULL", "-", "—", "/", "无"]


def norm_key(value: str) -> str:
    """Normalise a header or vocabulary value: stripped, lower case, runs of spaces and
    hyphens as ``_``."""
    return re.sub(r"[\s\-]+", "_", str(value).strip().lower())
