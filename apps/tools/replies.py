"""What the customer reads after a tool step, in English and Chinese, filled from the data.

Templates, not the model: the facts (status, last scan, ticket number) come from the carrier and the
ticket rows, so the reply is right even with the small CPU model, and an order's data reaches a reply
only from an authorised lookup's result.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.utils import timezone

CARRIERS = {
    "sf-express": ("SF Express", "顺丰速运"),
    "dhl": ("DHL", "DHL"),
    "ups": ("UPS", "UPS"),
    "zto": ("ZTO Express", "中通快递"),
    "jd-logistics": ("JD Logistics", "京东物流"),
}
SHIPMENT_STATUS = {
    "pending": ("waiting to be picked up by the carrier", "等待快递揽收"),
    "info_received": ("the carrier has the parcel's details", "快递公司已收到发货信息"),
    "in_transit": ("in transit", "运输中"),
    "out_for_delivery": ("out for delivery", "派送中"),
    "delivered": ("delivered", "已签收"),
    "exception": ("held up: the carrier reports a problem", "配送异常"),
    "lost": ("reported lost by the carrier", "快递公司报告包裹丢失"),
    "returned_to_sender": ("on its way back to us", "正在退回"),
    "unknown": ("not clear from the carrier's answer", "快递公司状态不明"),
}
ORDER_STATUS = {
    "pending": ("awaiting payment", "待付款"),
    "paid": ("paid", "已付款"),
    "shipped": ("shipped", "已发货"),
    "delivered": ("delivered", "已签收"),
    "cancelled": ("cancelled", "已取消"),
    "returned": ("returned", "已退货"),
}
# Why the parcel needs a person, in the customer's words.
ANOMALY = {
    "stale_in_transit": (
        "the tracking hasn't updated for {hours} hours",
        "物流信息已有 {hours} 小时没有更新",
    ),
    "exception": ("the carrier reported a problem with the delivery", "快递公司报告了配送异常"),
    "lost": ("the carrier reports the parcel as lost", "快递公司报告包裹丢失"),
    "past_promised_date": (
        "it's past the delivery date we promised ({date})",
        "已超过承诺的送达日期（{date}）",
    ),
    "returned_to_sender": ("the parcel is on its way back to us", "包裹正在退回我们这里"),
}

TEXT = {
    "ask_proof": (
        "I can look up order {number} for you. To protect your privacy, please tell me the email address "
        "or phone number used when the order was placed.",
        "我可以帮您查询订单 {number}。为保护您的隐私，请告诉我下单时使用的邮箱或手机号。",
    ),
    "not_on_account": (
        "I couldn't find order {number} on your account. If it was placed with another email address or "
        "phone number, please tell me that email or phone and I'll check again.",
        "在您的账户下没有找到订单 {number}。如果该订单是用其他邮箱或手机号下的，请告诉我对应的邮箱或手机号，"
        "我再为您查询。",
    ),
    "refused": (
        "Sorry, I can't share anything about order {number}: the order number and the email or phone you "
        "gave don't match our records. Please check both, or ask for a person if you need help.",
        "抱歉，订单号与您提供的邮箱或手机号不匹配，我无法提供订单 {number} 的任何信息。请核对后再试，"
        "或转人工客服。",
    ),
    "ask_order_number": (
        "I can check that for you. What's your order number? It looks like DS20240501.",
        "我可以帮您查询。请告诉我您的订单号（格式如 DS20240501）。",
    ),
    "ask_order_number_and_proof": (
        "I can check that for you. Please tell me your order number (it looks like DS20240501) and the "
        "email address or phone number used when the order was placed.",
        "我可以帮您查询。请告诉我您的订单号（格式如 DS20240501），以及下单时使用的邮箱或手机号。",
    ),
    "slow": (
        "I'm still checking with the carrier about order {number}: their tracking system is slow to answer "
        "right now. Please ask me again in a minute. If something is wrong with the delivery, we'll open a "
        "ticket and a colleague will contact you here.",
        "我还在向快递公司查询订单 {number}，对方的物流系统目前响应较慢。请一分钟后再问我一次。"
        "如果配送有问题，我们会创建工单，并由同事在这里联系您。",
    ),
    "failed": (
        "Sorry, I couldn't get the tracking details for order {number} from the carrier just now. Please "
        "try again in a few minutes, or ask for a person and a colleague will check it for you.",
        "抱歉，暂时无法从快递公司获取订单 {number} 的物流信息。请几分钟后再试，或转人工客服，由同事为您核实。",
    ),
    "not_shipped": (
        "Order {number} hasn't shipped yet (order status: {status}). You'll see tracking as soon as it "
        "leaves our warehouse.",
        "订单 {number} 尚未发货（订单状态：{status}）。发货后您就能看到物流信息。",
    ),
    "shipment": (
        "Order {number} ({carrier}, tracking number {tracking}): {status}.",
        "订单 {number}（{carrier}，运单号 {tracking}）：{status}。",
    ),
    "last_scan": (
        "Last scan: {time}, {place}: {description} ({ago}).",
        "最后一次扫描：{time}，{place}：{description}（{ago}）。",
    ),
    "no_scan": ("The carrier has no scans yet.", "快递公司暂无扫描记录。"),
    "expected": ("Expected by {date}.", "预计 {date} 前送达。"),
    "on_track": ("Everything looks on track.", "目前一切正常。"),
    "ticket": (
        "Because {why}, I've opened ticket {ticket} for our logistics team. They'll chase the carrier and "
        "update you here. We haven't forgotten your parcel, and you don't need to do anything else for now.",
        "由于{why}，我已为您创建工单 {ticket}，物流专员会联系快递公司核实，并在这里给您回复。"
        "我们会一直跟进您的包裹，您暂时无需其他操作。",
    ),
    "ticket_pending": (
        "Because {why}, I'm opening a ticket for our logistics team; a colleague will update you here. "
        "You don't need to do anything else for now.",
        "由于{why}，我正在为您创建工单，同事会在这里给您回复。您暂时无需其他操作。",
    ),
}


def _pick(pair: tuple[str, str], language: str) -> str:
    return pair[1] if language == "zh" else pair[0]


def text(name: str, language: str, **values: Any) -> str:
    return _pick(TEXT[name], language).format(**values)


def _ago(hours: float, language: str) -> str:
    if hours < 1:
        return "刚刚" if language == "zh" else "less than an hour ago"
    hours = round(hours)
    return f"{hours} 小时前" if language == "zh" else f"{hours} hour{'s' if hours != 1 else ''} ago"


def _scan_time(moment: datetime) -> str:
    # The carrier's own local time, with its offset: the place and the clock agree.
    offset = moment.strftime("%z")
    return f"{moment:%Y-%m-%d %H:%M} (UTC{offset[:3]}:{offset[3:]})"


def order_status_reply(result: dict[str, Any], tickets: dict[str, str | None], language: str) -> str:
    """The reply for an authorised lookup. ``tickets`` maps each anomaly code to its ticket number
    (None while the ticket is still being opened)."""
    number = result["order_number"]
    if not result["shipments"]:
        status = _pick(ORDER_STATUS.get(result["order_status"], (result["order_status"],) * 2), language)
        return text("not_shipped", language, number=number, status=status)
    now = timezone.now()
    paragraphs = []
    for shipment in result["shipments"]:
        carrier = _pick(CARRIERS.get(shipment["carrier"], (shipment["carrier"],) * 2), language)
        status = _pick(SHIPMENT_STATUS.get(shipment["status"], SHIPMENT_STATUS["unknown"]), language)
        lines = [
            text(
                "shipment",
                language,
                number=number,
                carrier=carrier,
                tracking=shipment["tracking_number"],
                status=status,
            )
        ]
        scan = shipment["last_scan"]
        silent_hours = 0.0
        if scan:
            moment = datetime.fromisoformat(scan["time"])
            silent_hours = (now - moment).total_seconds() / 3600
            lines.append(
                text(
                    "last_scan",
                    language,
                    time=_scan_time(moment),
                    place=scan["place"],
                    description=scan["description"],
                    ago=_ago(silent_hours, language),
                )
            )
        else:
            lines.append(text("no_scan", language))
        promised = shipment["promised_delivery_date"]
        if promised and shipment["status"] not in ("delivered", "lost", "returned_to_sender"):
            if date.fromisoformat(promised) >= timezone.localdate():
                lines.append(text("expected", language, date=promised))
        anomalies = [a for a in shipment["anomalies"] if a["code"] in ANOMALY]
        for anomaly in anomalies:
            why = _pick(ANOMALY[anomaly["code"]], language).format(hours=round(silent_hours), date=promised)
            ticket = tickets.get(anomaly["code"])
            lines.append(
                text("ticket", language, why=why, ticket=ticket)
                if ticket
                else text("ticket_pending", language, why=why)
            )
        if not anomalies and shipment["status"] != "delivered":
            lines.append(text("on_track", language))
        paragraphs.append(("" if language == "zh" else " ").join(lines))
    return "\n\n".join(paragraphs)
