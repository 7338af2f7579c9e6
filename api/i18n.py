"""Page strings in Chinese (default) and English.

The map page receives the strings of its language from the server (embedded in the
page as JSON), so every label, legend, popup, side panel and message comes from here.
Add a language by adding a dict with the same keys to :data:`STRINGS`.
"""

from __future__ import annotations

from typing import Any

#: Categories of events (the seven Fujin service categories): code -> (zh, en).
CATEGORY_LABELS: dict[str, tuple[str, str]] = {
    "information_collection": ("信息采集", "Information collection"),
    "opinion_survey": ("民意调查", "Opinion survey"),
    "policy_publicity": ("政策宣传", "Policy publicity"),
    "key_population": ("重点人群服务", "Key-population services"),
    "errand_service": ("代办服务", "Errand services"),
    "safety_hazard": ("安全隐患排查", "Safety-hazard checks"),
    "dispute_mediation": ("矛盾纠纷调解", "Dispute mediation"),
}
#: Event sources: code -> (zh, en).
SOURCE_LABELS: dict[str, tuple[str, str]] = {
    "grid_worker": ("网格员", "Grid worker"),
    "resident": ("居民随手拍", "Resident (snap-and-report)"),
}
#: Event statuses: code -> (zh, en).
STATUS_LABELS: dict[str, tuple[str, str]] = {
    "open": ("办理中", "Open"),
    "closed": ("已办结", "Closed"),
    "cancelled": ("已撤销", "Cancelled"),
}
#: Grid kinds: code -> (zh, en).
KIND_LABELS: dict[str, tuple[str, str]] = {
    "community": ("社区网格", "Community grid"),
    "rural": ("农村网格", "Rural grid"),
    "special": ("专属网格", "Special grid"),
}
#: Plan flags: code -> (zh, en).
FLAG_LABELS: dict[str, tuple[str, str]] = {
    "out_of_range": ("户数超出范围", "Households out of range"),
    "infeasible_split": ("无法在范围内划分", "No in-range split possible"),
    "isolated_village": ("偏远自然屯", "Isolated village"),
    "crosses_barrier": ("跨越道路或河流", "Crosses a road or river"),
    "no_households": ("无住户", "No households"),
}

#: Flood colours (red highest): code -> (zh, en).
FLOOD_LABELS: dict[str, tuple[str, str]] = {
    "red": ("红色 高风险", "Red: high"),
    "orange": ("橙色 较高风险", "Orange: elevated"),
    "yellow": ("黄色 中风险", "Yellow: medium"),
    "blue": ("蓝色 低风险", "Blue: low"),
    "none": ("无风险", "No risk"),
}

_ZH: dict[str, str] = {
    "title": "网格化管理地图",
    "app_name": "gridmap 网格地图",
    "lang_switch": "English",
    "layers": "图层",
    "layer_grids": "网格",
    "layer_buildings": "楼栋",
    "layer_events_heat": "事件热力图",
    "layer_event_rates": "每百户事件数",
    "layer_background": "道路与水系",
    "layer_communities": "社区边界",
    "layer_flood": "洪涝风险四色",
    "layer_evacuation": "疏散路线与避难场所",
    "evac_shelter": "避难场所",
    "evac_load": "安置人数 / 容量",
    "evac_pct_used": "使用率",
    "evac_routes": "疏散路线（颜色：转移批次）",
    "evac_other_shelters": "其他避难场所",
    "evac_circle": "圆圈大小：安置人数",
    "evac_impassable": "洪峰时积水不可通行道路",
    "evac_waves": "转移批次（按路线受淹先后）",
    "evac_wave": "第几批",
    "evac_driven": "车辆转运",
    "evac_status": "状态",
    "evac_closed": "受淹关闭",
    "evac_island": "洪峰时成孤岛的避难场所",
    "evac_needs_transport": "需车辆/舟艇转运",
    "evac_shelters_used": "避难场所（安置 / 容量）",
    "evac_placed": "已安置",
    "evac_cut_off": "道路被淹、未能转移",
    "evac_no_capacity": "容量不足、未能安置",
    "evac_clearance": "全部到达用时",
    "evac_persons": "人数",
    "unit_persons": "人",
    "unit_min": "分钟",
    "flood_grade": "洪涝风险",
    "households_at_risk": "受淹户数",
    "persons_at_risk": "需转移人数",
    "water_depth": "水深",
    "legend": "图例",
    "legend_flagged": "有标记的网格",
    "legend_road": "主干道",
    "legend_water": "河流水系",
    "legend_rail": "铁路",
    "legend_community": "社区边界",
    "legend_heat": "事件密度：低 → 高",
    "legend_rates": "每百户事件数",
    "legend_buildings": "楼栋（颜色：户数）",
    "legend_no_data": "无数据",
    "search_placeholder": "输入网格编码",
    "search_button": "查找",
    "search_not_found": "未找到网格 {code}",
    "search_many": "{n} 个网格匹配 {code}，请输入更多位数",
    "grid_code": "网格编码",
    "grid_name": "网格名称",
    "community": "社区",
    "kind": "类型",
    "households": "户数",
    "buildings": "楼栋数",
    "range": "户数范围",
    "flags": "标记",
    "flag_reason": "标记原因",
    "difficult": "治理难度大",
    "yes": "是",
    "no": "否",
    "worker": "网格员",
    "unassigned": "未配备",
    "area": "面积",
    "compactness": "紧凑度",
    "events": "事件数",
    "per_100": "每百户事件",
    "on_time_rate": "按时办结率",
    "open_events": "办理中",
    "overdue": "超期",
    "panel_title": "网格详情",
    "close": "关闭",
    "loading": "加载中…",
    "load_failed": "加载失败：{message}",
    "no_plan": "尚无网格方案。请上传楼栋数据（POST /api/plans）或运行 gridmap serve 加载示例。",
    "zoom_for_buildings": "放大地图以显示楼栋",
    "buildings_truncated": "仅显示 {shown} / {total} 栋楼",
    "plan": "方案",
    "version": "版本",
    "grids_total": "网格数",
    "households_total": "总户数",
    "tiles_none": "无底图：显示方案中的道路、水系和社区边界",
    "unit_households": "户",
    "unit_m2": "平方米",
    "event": "事件",
    "category": "类别",
    "source": "来源",
    "status": "状态",
    "reported_at": "上报时间",
    "no_events": "暂无事件",
    "login_title": "gridmap 网格地图：登录",
    "login_message": "本服务器的数据不公开。请输入访问令牌（GRIDMAP_TOKEN）。",
    "login_failed": "令牌不正确，请重试。",
    "login_button": "登录",
}

_EN: dict[str, str] = {
    "title": "Grid management map",
    "app_name": "gridmap",
    "lang_switch": "中文",
    "layers": "Layers",
    "layer_grids": "Grids",
    "layer_buildings": "Buildings",
    "layer_events_heat": "Event heat map",
    "layer_event_rates": "Events per 100 households",
    "layer_background": "Roads and water",
    "layer_communities": "Community boundaries",
    "layer_flood": "Flood risk (four colours)",
    "layer_evacuation": "Evacuation routes and shelters",
    "evac_shelter": "Shelter",
    "evac_load": "Load / capacity",
    "evac_pct_used": "Used",
    "evac_routes": "Routes (colour: departure wave)",
    "evac_other_shelters": "Other shelters",
    "evac_circle": "Circle size: persons placed",
    "evac_impassable": "Impassable road at the peak (flooded)",
    "evac_waves": "Departure waves (whose way out floods first)",
    "evac_wave": "Wave",
    "evac_driven": "Driven there",
    "evac_status": "Status",
    "evac_closed": "closed (flooded)",
    "evac_island": "Island at the peak (its roads flood)",
    "evac_needs_transport": "Not placed: needs a vehicle or boat",
    "evac_shelters_used": "Shelters (placed / capacity)",
    "evac_placed": "Placed",
    "evac_cut_off": "Not placed: cut off by flooded roads",
    "evac_no_capacity": "Not placed: no shelter capacity",
    "evac_clearance": "Clearance time",
    "evac_persons": "Persons",
    "unit_persons": "persons",
    "unit_min": "min",
    "flood_grade": "Flood risk",
    "households_at_risk": "Households at risk",
    "persons_at_risk": "Persons to move",
    "water_depth": "depth",
    "legend": "Legend",
    "legend_flagged": "Flagged grid",
    "legend_road": "Arterial road",
    "legend_water": "River",
    "legend_rail": "Railway",
    "legend_community": "Community boundary",
    "legend_heat": "Event density: low → high",
    "legend_rates": "Events per 100 households",
    "legend_buildings": "Buildings (colour: households)",
    "legend_no_data": "No data",
    "search_placeholder": "Grid code",
    "search_button": "Find",
    "search_not_found": "No grid {code}",
    "search_many": "{n} grids match {code}; type more digits",
    "grid_code": "Grid code",
    "grid_name": "Grid name",
    "community": "Community",
    "kind": "Kind",
    "households": "Households",
    "buildings": "Buildings",
    "range": "Household range",
    "flags": "Flags",
    "flag_reason": "Reason",
    "difficult": "Hard to govern",
    "yes": "yes",
    "no": "no",
    "worker": "Grid worker",
    "unassigned": "not assigned",
    "area": "Area",
    "compactness": "Compactness",
    "events": "Events",
    "per_100": "Events per 100 households",
    "on_time_rate": "Closed on time",
    "open_events": "Open",
    "overdue": "Overdue",
    "panel_title": "Grid details",
    "close": "Close",
    "loading": "Loading…",
    "load_failed": "Could not load: {message}",
    "no_plan": "No grid plan yet. Upload footprints (POST /api/plans) or run gridmap serve to load the sample.",
    "zoom_for_buildings": "Zoom in to see buildings",
    "buildings_truncated": "Showing {shown} of {total} buildings",
    "plan": "Plan",
    "version": "version",
    "grids_total": "Grids",
    "households_total": "Households",
    "tiles_none": "No base map: roads, water and community boundaries come from the plan",
    "unit_households": "households",
    "unit_m2": "m²",
    "event": "Event",
    "category": "Category",
    "source": "Source",
    "status": "Status",
    "reported_at": "Reported",
    "no_events": "No events",
    "login_title": "gridmap: sign in",
    "login_message": "Reads are private on this server. Enter the access token (GRIDMAP_TOKEN).",
    "login_failed": "Wrong token, try again.",
    "login_button": "Sign in",
}

#: Why evacuation demand is not placed (gridmap.evacuation reasons): code -> (zh, en).
EVAC_REASON_LABELS: dict[str, tuple[str, str]] = {
    "needs_transport": ("步行范围内无避难所，需车辆/舟艇", "No shelter within walking reach"),
    "no_capacity": ("步行范围内避难所已满", "Shelters within reach full"),
    "no_route": ("无道路通往避难所", "No road to a shelter"),
    "cut_off": ("洪峰时道路受淹", "Cut off at the peak"),
}

#: Page strings per language.
STRINGS: dict[str, dict[str, str]] = {"zh": _ZH, "en": _EN}


def _pick(table: dict[str, tuple[str, str]], lang: str) -> dict[str, str]:
    i = 0 if lang == "zh" else 1
    return {k: v[i] for k, v in table.items()}


def page_strings(lang: str) -> dict[str, Any]:
    """All strings of the page in `lang` (``zh`` or ``en``; anything else gives ``zh``).

    Returns
    -------
    dict
        The UI strings plus ``categories``, ``sources``, ``statuses``, ``kinds`` and
        ``flag_labels``, ``flood`` and ``evac_reason`` (code -> label).
    """
    lang = lang if lang in STRINGS else "zh"
    return {
        **STRINGS[lang],
        "categories": _pick(CATEGORY_LABELS, lang),
        "sources": _pick(SOURCE_LABELS, lang),
        "statuses": _pick(STATUS_LABELS, lang),
        "kinds": _pick(KIND_LABELS, lang),
        "flag_labels": _pick(FLAG_LABELS, lang),
        "flood": _pick(FLOOD_LABELS, lang),
        "evac_reason": _pick(EVAC_REASON_LABELS, lang),
    }
