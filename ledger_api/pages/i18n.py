# Chinese text is written with full-width punctuation, which RUF001 takes for look-alikes.
# ruff: noqa: RUF001, RUF002
"""The pages' two languages, Simplified Chinese and English: a message catalogue per
language (a dict; no gettext compile step) and how a reader's language is chosen.

The choice, first that applies: `?lang=` (the language switch links; the answer also sets
the `lang` cookie so the choice sticks), the `lang` cookie, the browser's Accept-Language
(by q-value; any `zh-*` tag counts as Chinese, any `en-*` as English), else English.
Messages are plain text with `{name}` fields; the templates escape them.

Times are shown in the deployment's time zone (`LEDGER_TIMEZONE`) when it has one; else
Chinese pages in Asia/Shanghai (China has one zone, UTC+8: what a reader there expects)
and English pages in UTC. Each time names its zone, and so does the footer.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.numbers import format_percent
from fastapi import Request

from ledger_api.pages import money as formats

COOKIE = "lang"
DEFAULT = "en"
LOCALES = {"en": "en", "zh-CN": "zh_CN"}  # language tag -> Babel locale
ZONES = {"en": "UTC", "zh-CN": "Asia/Shanghai"}  # language tag -> its time zone, unless set

EN: dict[str, str] = {
    "site.name": "Charity ledger",
    "nav.skip": "Skip to the main content",
    "nav.language": "Language",
    "nav.breadcrumbs": "You are here",
    "nav.home": "Home",
    "a11y.diagram": "Diagram: {name}",
    "a11y.table": "Table: {name}",
    "nav.back_home": "Back to the home page",
    "footer.mirror": (
        "Every record on these pages is read from a mirror of a public Ethereum ledger; each one "
        "names the transaction that recorded it, so you can check it on any node without trusting us."
    ),
    "footer.times": "Times are in {zone}.",
    "time.zone": "{name} ({offset})",
    "footer.api": "API for developers",
    "proof.final": "Final ({n} confirmations)",
    "proof.pending": "Not final yet ({n} confirmations so far)",
    "verify.summary": "Verify it yourself",
    "verify.evidence": "Verify where it is anchored",
    "verify.chain_id": "Chain ID",
    "verify.contract": "Ledger contract",
    "verify.tx_hash": "Transaction hash",
    "verify.block": "Block number",
    "verify.block_hash": "Block hash",
    "verify.log_index": "Log index",
    "verify.time": "Block time",
    "verify.status": "Status",
    "verify.howto": (
        "Ask any node of this chain for the transaction's receipt (eth_getTransactionReceipt), "
        "for example with Foundry's cast or with curl, where RPC_URL is the node's address:"
    ),
    "verify.check": (
        "In the answer, blockNumber must be {block} and blockHash the block hash above, and the "
        "log whose logIndex is {log} must come from the ledger contract above."
    ),
    "donation.title": "Donation {id}",
    "donation.heading": "Donation",
    "donation.lead": "Where this donation went, step by step, with the proof of each step.",
    "donation.summary": "Summary",
    "donation.receipt_link": "Printable receipt",
    "donation.picture": "Where the money went",
    "donation.picture_caption": (
        "The donation on the left; on the right, the disbursements it paid for, what was refunded "
        "and what is not spent yet. Band widths are proportional to the amounts."
    ),
    "donation.timeline": "Step by step",
    "donation.mirror": (
        "The mirror has read the chain up to block {indexed}; blocks up to {finalized} are final."
    ),
    "donation.ownership": "Is this donation yours?",
    "donation.ownership_text": (
        "Your name is not on the ledger. Your receipt carries a secret: with it and the reference "
        "the charity recorded for you, you can prove this donation is yours, and nobody else can."
    ),
    "field.amount": "Amount",
    "field.campaign": "Campaign",
    "field.charity": "Charity",
    "field.date": "Date",
    "field.channel": "Channel",
    "field.status": "Status",
    "field.purpose": "Purpose",
    "field.recipient": "Recipient",
    "field.from_this_donation": "From this donation",
    "field.disbursement_total": "Whole disbursement",
    "field.disbursement": "Disbursement",
    "field.reason": "Reason",
    "field.refund": "Refund",
    "field.evidence": "Evidence",
    "total.allocated": "Spent on disbursements",
    "total.refunded": "Refunded",
    "total.remaining": "Not yet spent",
    "total.received": "Received",
    "total.disbursed": "Disbursed",
    "total.available": "Available",
    "step.donation": "Donation of {amount} recorded",
    "step.donation_text": "Received for the campaign “{campaign}”.",
    "step.allocation": "{amount} paid for a disbursement",
    "step.refund": "{amount} refunded",
    "step.remaining": "Not yet spent: {amount}",
    "step.remaining_text": "The charity still holds this part of the donation for the campaign.",
    "step.nothing_remaining": "Every part of this donation has been spent or refunded.",
    "evidence.heading": "Evidence documents",
    "evidence.document": "Document {n}",
    "evidence.not_stored": "Document {n} (not stored here: anyone holding a copy can check its hash)",
    "evidence.none": "No evidence document is anchored for this disbursement yet.",
    "evidence.count": "Documents: {n}",
    "evidence.none_short": "None yet",
    "campaign.by": "By",
    "campaign.closed": "Closed",
    "campaign.open": "Open for donations",
    "campaign.totals": "Totals",
    "campaign.counts": "Donations: {donations} · Disbursements: {disbursements}",
    "campaign.goal": "Goal: {received} of {goal} received ({share})",
    "campaign.flow": "Where the money went",
    "campaign.flow_caption": (
        "Donations, grouped by month and channel, on the left; on the right, the largest "
        "disbursements, the others together, refunds and what is not spent yet. Band widths are "
        "proportional to the amounts."
    ),
    "campaign.no_donations": "No donations yet.",
    "campaign.disbursements": "Disbursements",
    "campaign.coverage": (
        "Evidence: {n} of {total} disbursements have documents anchored ({share} of the amount paid out)."
    ),
    "campaign.no_disbursements": "No disbursements yet.",
    "campaign.donations": "Donations",
    "campaign.donations_note": ("The most recent first, amounts and times only: nothing about the donors."),
    "list.more": "More",
    "charity.lead": "A registered charity on the ledger.",
    "charity.totals": "Totals",
    "charity.counts": "Campaigns: {campaigns} · Donations: {donations}",
    "charity.per_currency": "Amounts in different currencies are shown separately, never added up.",
    "charity.no_campaigns": "No campaigns yet.",
    "charity.campaigns": "Campaigns",
    "disbursement.title": "Disbursement {id}",
    "disbursement.heading": "Disbursement",
    "disbursement.funding": "Paid for by",
    "disbursement.funding_text": "Donations that paid for it: {n}. Amounts and times only.",
    "disbursement.more": "And {n} more (see the JSON API).",
    "error.not_found": "Not found",
    "error.not_found.donation": (
        "There is no donation with this ID. Check it against your receipt; a very recent "
        "donation can take a minute to appear."
    ),
    "error.not_found.campaign": "There is no campaign with this ID.",
    "error.not_found.charity": "There is no charity with this ID.",
    "error.not_found.disbursement": "There is no disbursement with this ID.",
    "error.not_found.page": "There is nothing here.",
    "error.not_allowed": "Not available this way",
    "error.not_allowed_text": "This address does not answer this kind of request.",
    "error.invalid": "That ID is not valid",
    "error.invalid.donation": "A donation ID looks like DN-7K3M-9QX2-P4TA-B5C8.",
    "error.invalid.campaign": "A campaign ID looks like CP-7K3M-9QX2-P4TA-B5C8.",
    "error.invalid.charity": "A charity ID looks like CH-7K3M-9QX2-P4TA-B5C8.",
    "error.invalid.disbursement": "A disbursement ID looks like DB-7K3M-9QX2-P4TA-B5C8.",
    "error.invalid.page": "This link is not valid.",
    "error.invalid.form": "The form was not filled in as expected.",
    "error.internal": "Something went wrong",
    "error.internal_text": "This page could not be shown. It has been logged; please try again later.",
    "error.hint": "You can type the ID from your receipt below, or paste the address from its QR code.",
    "search.label": "Donation ID",
    "search.hint": (
        "As printed on your receipt, e.g. DN-7K3M-9QX2-P4TA-B5C8, or the address from its QR code."
    ),
    "search.button": "Trace",
    "search.empty": "Please type a donation ID.",
    "search.bad": (
        "That does not look like a donation ID. It has two letters and four groups of four "
        "letters or digits, like DN-7K3M-9QX2-P4TA-B5C8."
    ),
    "home.title": "Follow your donation",
    "home.heading": "Follow your donation",
    "home.intro": (
        "Charities record every donation they receive and every payment they make on a public "
        "ledger. Type the ID on your receipt to see exactly what your donation paid for, with "
        "the evidence, and check each step yourself."
    ),
    "home.search": "Trace a donation",
    "home.charities": "Charities and their campaigns",
    "home.charity_totals": "Received {received} · Disbursed {disbursed} · Available {available}",
    "home.campaign_totals": "Received {received} · Disbursed {disbursed}",
    "home.all_campaigns": "All its campaigns",
    "home.no_charities": "No charities yet.",
    "receipt.title": "Receipt {id}",
    "receipt.heading": "Donation receipt",
    "receipt.id": "Donation ID",
    "receipt.qr_caption": "Scan to trace this donation:",
    "receipt.qr_title": "QR code: the trace of donation {id}",
    "receipt.secret": "Receipt secret",
    "receipt.secret_text": (
        "Keep it private. With it and the reference the charity recorded for you, you can prove "
        "this donation is yours."
    ),
    "receipt.verify": "How to check",
    "receipt.verify_text": (
        "Scan the QR code, or open {home} and type {id}: you will see what your donation paid for. "
        "Every step names its transaction on the public ledger, so anyone can check it on any node."
    ),
    "receipt.print": "Print this receipt",
    "receipt.print_text": "Use your browser's Print command: the receipt fits on one A5 page.",
    "receipt.for_charity": "For the charity, at the time of the donation",
    "receipt.for_charity_text": (
        "To print the receipt with the donor's receipt secret, paste it here. It is not kept, and "
        "the page that shows it is not cached."
    ),
    "receipt.secret_label": "Receipt secret (0x and 64 hexadecimal digits)",
    "receipt.secret_button": "Show the receipt with the secret",
    "receipt.secret_invalid": "A receipt secret is 0x followed by 64 hexadecimal digits (0-9, a-f).",
    "flow.this_donation": "This donation",
    "flow.other_disbursements": "Other disbursements",
    "flow.other_donations": "Other donations",
    "flow.refunded": "Refunded",
    "flow.unspent": "Not yet spent",
    "flow.trace_title": "Where donation {id} went",
    "flow.trace_desc": (
        "A donation of {amount}: {allocated} paid for disbursements ({n}), {refunded} refunded, "
        "{remaining} not yet spent."
    ),
    "flow.campaign_title": "Where the money of “{name}” went",
    "flow.campaign_desc": (
        "Received {received}: {disbursed} disbursed, {refunded} refunded, {available} not yet spent."
    ),
    "channel.bank-transfer": "Bank transfer",
    "channel.wechat-pay": "WeChat Pay",
    "channel.alipay": "Alipay",
    "channel.cash-box": "Cash box",
    "channel.unspecified": "Unspecified",
}

ZH: dict[str, str] = {
    "site.name": "公益账本",
    "nav.skip": "跳到主要内容",
    "nav.language": "语言",
    "nav.breadcrumbs": "当前位置",
    "nav.home": "首页",
    "a11y.diagram": "图：{name}",
    "a11y.table": "表格：{name}",
    "nav.back_home": "返回首页",
    "footer.mirror": (
        "本站每一条记录都读取自一条公开以太坊账本的镜像；每条记录都注明写入它的交易，"
        "您无需信任我们，可在任意节点上自行核对。"
    ),
    "footer.times": "时间均为{zone}。",
    "time.zone": "{name}（{offset}）",
    "footer.api": "开发者接口",
    "proof.final": "已最终确认（{n} 个确认）",
    "proof.pending": "尚未最终确认（目前 {n} 个确认）",
    "verify.summary": "自行核验",
    "verify.evidence": "核验其锚定记录",
    "verify.chain_id": "链 ID",
    "verify.contract": "账本合约",
    "verify.tx_hash": "交易哈希",
    "verify.block": "区块号",
    "verify.block_hash": "区块哈希",
    "verify.log_index": "日志序号",
    "verify.time": "区块时间",
    "verify.status": "状态",
    "verify.howto": (
        "向这条链的任意节点查询该交易的回执（eth_getTransactionReceipt），"
        "例如使用 Foundry 的 cast 或 curl，其中 RPC_URL 为节点地址："
    ),
    "verify.check": (
        "返回结果中，blockNumber 应为 {block}，blockHash 应为上面的区块哈希，"
        "且 logIndex 为 {log} 的日志应来自上面的账本合约。"
    ),
    "donation.title": "捐赠 {id}",
    "donation.heading": "捐赠",
    "donation.lead": "这笔捐赠的每一步去向，以及每一步的证明。",
    "donation.summary": "概要",
    "donation.receipt_link": "可打印的收据",
    "donation.picture": "善款去向",
    "donation.picture_caption": (
        "左边是这笔捐赠；右边是它资助的各项支出、已退还的部分和尚未使用的部分。色带宽度与金额成正比。"
    ),
    "donation.timeline": "逐步追踪",
    "donation.mirror": "镜像已读取到第 {indexed} 号区块；第 {finalized} 号及之前的区块已最终确认。",
    "donation.ownership": "这是您的捐赠吗？",
    "donation.ownership_text": (
        "账本上没有您的姓名。您的收据上印有一个密钥：凭它和慈善机构为您登记的参考信息，"
        "您可以证明这笔捐赠属于您，而别人无法做到。"
    ),
    "field.amount": "金额",
    "field.campaign": "项目",
    "field.charity": "慈善机构",
    "field.date": "日期",
    "field.channel": "渠道",
    "field.status": "状态",
    "field.purpose": "用途",
    "field.recipient": "收款方",
    "field.from_this_donation": "来自这笔捐赠",
    "field.disbursement_total": "该笔支出总额",
    "field.disbursement": "支出",
    "field.reason": "原因",
    "field.refund": "退款",
    "field.evidence": "凭证",
    "total.allocated": "已用于支出",
    "total.refunded": "已退还",
    "total.remaining": "尚未使用",
    "total.received": "已收到",
    "total.disbursed": "已支出",
    "total.available": "可用余额",
    "step.donation": "已登记捐赠 {amount}",
    "step.donation_text": "捐给项目“{campaign}”。",
    "step.allocation": "{amount} 用于一笔支出",
    "step.refund": "已退还 {amount}",
    "step.remaining": "尚未使用：{amount}",
    "step.remaining_text": "这部分善款仍由慈善机构为该项目保管。",
    "step.nothing_remaining": "这笔捐赠已全部用于支出或退还。",
    "evidence.heading": "凭证文件",
    "evidence.document": "文件 {n}",
    "evidence.not_stored": "文件 {n}（本站未存储：持有副本的任何人都可核对其哈希）",
    "evidence.none": "这笔支出暂未锚定凭证文件。",
    "evidence.count": "文件：{n}",
    "evidence.none_short": "暂无",
    "campaign.by": "发起机构：",
    "campaign.closed": "已结束",
    "campaign.open": "正在接受捐赠",
    "campaign.totals": "总计",
    "campaign.counts": "捐赠：{donations} 笔 · 支出：{disbursements} 笔",
    "campaign.goal": "目标：已收到 {received}，目标 {goal}（{share}）",
    "campaign.flow": "善款去向",
    "campaign.flow_caption": (
        "左边是按月份和渠道汇总的捐赠；右边是金额最大的几笔支出、其余支出合计、退款和尚未使用的部分。"
        "色带宽度与金额成正比。"
    ),
    "campaign.no_donations": "暂无捐赠。",
    "campaign.disbursements": "支出",
    "campaign.coverage": "凭证：{total} 笔支出中有 {n} 笔已锚定文件（占支出金额的 {share}）。",
    "campaign.no_disbursements": "暂无支出。",
    "campaign.donations": "捐赠",
    "campaign.donations_note": "最新的在前，只显示金额和时间，不含任何捐赠人信息。",
    "list.more": "更多",
    "charity.lead": "已在账本上登记的慈善机构。",
    "charity.totals": "总计",
    "charity.counts": "项目：{campaigns} 个 · 捐赠：{donations} 笔",
    "charity.per_currency": "不同币种的金额分开列出，不相加。",
    "charity.no_campaigns": "暂无项目。",
    "charity.campaigns": "项目",
    "disbursement.title": "支出 {id}",
    "disbursement.heading": "支出",
    "disbursement.funding": "资金来源",
    "disbursement.funding_text": "资助这笔支出的捐赠：{n} 笔。只显示金额和时间。",
    "disbursement.more": "另有 {n} 笔（请查看 JSON 接口）。",
    "error.not_found": "未找到",
    "error.not_found.donation": "没有这个编号的捐赠。请与收据核对；刚刚完成的捐赠可能需要一分钟才会显示。",
    "error.not_found.campaign": "没有这个编号的项目。",
    "error.not_found.charity": "没有这个编号的慈善机构。",
    "error.not_found.disbursement": "没有这个编号的支出。",
    "error.not_found.page": "这里什么也没有。",
    "error.not_allowed": "无法以这种方式访问",
    "error.not_allowed_text": "这个地址不接受这种请求。",
    "error.invalid": "编号无效",
    "error.invalid.donation": "捐赠编号的格式类似 DN-7K3M-9QX2-P4TA-B5C8。",
    "error.invalid.campaign": "项目编号的格式类似 CP-7K3M-9QX2-P4TA-B5C8。",
    "error.invalid.charity": "慈善机构编号的格式类似 CH-7K3M-9QX2-P4TA-B5C8。",
    "error.invalid.disbursement": "支出编号的格式类似 DB-7K3M-9QX2-P4TA-B5C8。",
    "error.invalid.page": "这个链接无效。",
    "error.invalid.form": "表单填写有误。",
    "error.internal": "出错了",
    "error.internal_text": "无法显示此页面。错误已记录，请稍后再试。",
    "error.hint": "您可以在下面输入收据上的编号，或粘贴收据二维码中的网址。",
    "search.label": "捐赠编号",
    "search.hint": "即收据上印的编号，例如 DN-7K3M-9QX2-P4TA-B5C8，也可以粘贴二维码中的网址。",
    "search.button": "追踪",
    "search.empty": "请输入捐赠编号。",
    "search.bad": (
        "这不像捐赠编号。捐赠编号由两个字母和四组各四位的字母或数字组成，例如 DN-7K3M-9QX2-P4TA-B5C8。"
    ),
    "home.title": "追踪您的捐赠",
    "home.heading": "追踪您的捐赠",
    "home.intro": (
        "慈善机构把收到的每一笔捐赠和付出的每一笔款项都记在公开账本上。"
        "输入收据上的编号，就能看到您的捐赠具体用在了哪里、有哪些凭证，并可自行核验每一步。"
    ),
    "home.search": "追踪一笔捐赠",
    "home.charities": "慈善机构及其项目",
    "home.charity_totals": "已收到 {received} · 已支出 {disbursed} · 可用余额 {available}",
    "home.campaign_totals": "已收到 {received} · 已支出 {disbursed}",
    "home.all_campaigns": "查看全部项目",
    "home.no_charities": "暂无慈善机构。",
    "receipt.title": "收据 {id}",
    "receipt.heading": "捐赠收据",
    "receipt.id": "捐赠编号",
    "receipt.qr_caption": "扫码追踪这笔捐赠：",
    "receipt.qr_title": "二维码：捐赠 {id} 的追踪页面",
    "receipt.secret": "收据密钥",
    "receipt.secret_text": "请妥善保管。凭它和慈善机构为您登记的参考信息，您可以证明这笔捐赠属于您。",
    "receipt.verify": "如何核验",
    "receipt.verify_text": (
        "扫描二维码，或打开 {home} 并输入 {id}，即可看到您的捐赠用在了哪里。"
        "每一步都注明了它在公开账本上的交易，任何人都可以在任意节点上核对。"
    ),
    "receipt.print": "打印收据",
    "receipt.print_text": "请使用浏览器的“打印”功能：收据可打印在一张 A5 纸上。",
    "receipt.for_charity": "供慈善机构在收款时使用",
    "receipt.for_charity_text": (
        "如需打印带有捐赠人收据密钥的收据，请在此粘贴密钥。密钥不会被保存，显示密钥的页面也不会被缓存。"
    ),
    "receipt.secret_label": "收据密钥（0x 加 64 位十六进制数字）",
    "receipt.secret_button": "显示带密钥的收据",
    "receipt.secret_invalid": "收据密钥是 0x 加 64 位十六进制数字（0-9、a-f）。",
    "flow.this_donation": "这笔捐赠",
    "flow.other_disbursements": "其他支出",
    "flow.other_donations": "其他捐赠",
    "flow.refunded": "已退还",
    "flow.unspent": "尚未使用",
    "flow.trace_title": "捐赠 {id} 的去向",
    "flow.trace_desc": (
        "捐赠 {amount}：{allocated} 用于支出（{n} 笔），已退还 {refunded}，尚未使用 {remaining}。"
    ),
    "flow.campaign_title": "项目“{name}”的善款去向",
    "flow.campaign_desc": "已收到 {received}：已支出 {disbursed}，已退还 {refunded}，尚未使用 {available}。",
    "channel.bank-transfer": "银行转账",
    "channel.wechat-pay": "微信支付",
    "channel.alipay": "支付宝",
    "channel.cash-box": "募捐箱",
    "channel.unspecified": "未注明",
}

MESSAGES: dict[str, dict[str, str]] = {"en": EN, "zh-CN": ZH}


def language_of(tag: str | None) -> str | None:
    """The page language a language tag asks for, or None: any zh tag is zh-CN, any en
    tag en (case-insensitive)."""
    if not tag:
        return None
    tag = tag.strip().lower().replace("_", "-")
    if tag == "zh" or tag.startswith("zh-"):
        return "zh-CN"
    if tag == "en" or tag.startswith("en-"):
        return "en"
    return None


def from_accept_language(header: str | None) -> str | None:
    """The reader's preferred page language from an Accept-Language header: the highest
    q-value among the tags we have (the first of equals), or None."""
    best: tuple[float, int, str] | None = None
    for position, part in enumerate((header or "").split(",")[:50]):
        tag, _, parameters = part.partition(";")
        language = language_of(tag)
        if language is None:
            continue
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        if best is None or (quality, -position) > (best[0], -best[1]):
            best = (quality, position, language)
    return best[2] if best else None


@dataclass(frozen=True)
class Reader:
    """One reader's language, and how to write things for them."""

    lang: str  # "en" or "zh-CN": the <html lang>
    chosen: str | None = None  # set when they chose it with ?lang= (the cookie is then set)
    timezone: ZoneInfo | None = None  # the deployment's (LEDGER_TIMEZONE); None: ZONES[lang]

    @property
    def zone(self) -> ZoneInfo:
        """The time zone this reader's times are shown in."""
        return self.timezone or ZoneInfo(ZONES[self.lang])

    @property
    def messages(self) -> dict[str, str]:
        return MESSAGES[self.lang]

    @property
    def locale(self) -> str:
        return LOCALES[self.lang]

    def t(self, key: str, **fields: object) -> str:
        message = self.messages[key]
        return message.format(**fields) if fields else message

    def money(self, amount: int, currency: str) -> str:
        return formats.money(amount, currency, self.locale)

    def count(self, value: int) -> str:
        return formats.count(value, self.locale)

    def share(self, numerator: int, denominator: int) -> str:
        return formats.share(numerator, denominator, self.locale)

    def percent(self, value: float | None) -> str:
        """A share the read services give as a number between 0 and 1 (or None)."""
        if value is None:
            return "—"
        return format_percent(Decimal(str(value)), format="#,##0.#%", locale=self.locale)

    def moment(self, iso: str | None) -> str:
        """An ISO 8601 time from the read services on this reader's clock, naming the zone:
        "Mar 4, 2026, 5:06\u202fAM UTC", "2026年3月4日 13:06 中国标准时间（GMT+08:00）"."""
        if not iso:
            return "—"
        when = formats.instant(iso)
        name, offset = formats.zone_at(when, self.zone, self.locale)
        zone = name if offset is None else self.t("time.zone", name=name, offset=offset)
        return f"{formats.local_time(when, self.zone, self.locale)} {zone}"

    def zone_title(self) -> str:
        """The zone the page's times are in, for the footer: "China (Shanghai) Time",
        "Coordinated Universal Time (UTC)"."""
        name, short = formats.zone_title(self.zone, self.locale)
        return name if short is None else self.t("time.zone", name=name, offset=short)

    def channel(self, name: str) -> str:
        """A donation channel's name: ours for the common ones, else as recorded."""
        return self.messages.get(f"channel.{name}", name)


def reader_for(request: Request) -> Reader:
    mirror = getattr(request.app.state, "mirror", None)
    configured = mirror.settings.timezone if mirror is not None else None
    timezone = ZoneInfo(configured) if configured else None  # checked when the settings were read
    chosen = language_of(request.query_params.get("lang"))
    if chosen is not None:
        return Reader(chosen, chosen=chosen, timezone=timezone)
    lang = (
        language_of(request.cookies.get(COOKIE))
        or from_accept_language(request.headers.get("accept-language"))
        or DEFAULT
    )
    return Reader(lang, timezone=timezone)
