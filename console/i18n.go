package console

import "net/http"

// The console's words, Chinese first. A page asks for a word by its key (T "key"); a key
// without a word here shows as itself, which a test catches.
var words = map[string]map[string]string{
	"zh": {
		"appName": "档案 · 电子档案管理", "home": "首页", "login": "登录", "logout": "退出", "name": "用户名", "password": "密码",
		"loginFailed": "用户名或密码不正确。", "loginLocked": "密码错误次数过多，账户已暂时锁定，请稍后再试。",
		"unavailable": "服务暂时不可用，请稍后再试。", "notFound": "页面不存在。", "signedInAs": "当前用户",
		"holdings": "馆藏", "packages": "件", "bytes": "字节", "byRetention": "按保管期限", "byState": "按状态",
		"due": "待办", "dueNone": "当前没有到期事项。", "overdue": "已逾期", "kind": "类别", "archivalCode": "档号", "date": "日期",
		"audit": "四性检测", "auditNone": "尚未运行检测。", "auditRunning": "正在检测", "auditDone": "已完成", "failures": "失败",
		"log": "日志与见证", "checkpoint": "最新检查点", "logSize": "条目数", "noCheckpoint": "尚无检查点。", "witnesses": "见证签名",
		"storage": "存储", "ready": "正常", "notReady": "不可用",
		"kind.retention-expiry": "保管期满待鉴定", "kind.transfer-due": "到期移交", "kind.copy-deletable": "副本可删除", "kind.audit-overdue": "逾期未检测",
		"kind.late-archiving": "逾期归档", "language": "English", "languageCode": "en",
		"search": "检索", "searchHint": "题名、意见、正文中的词语，\"短语\"", "refine": "在结果中检索", "within": "已在以下结果中检索",
		"found": "共找到", "facetsOf": "分面统计最新", "clearFilters": "清除筛选", "noHits": "没有找到档案。", "nextPage": "下一页",
		"finished": "办结", "ingested": "归档", "badSearch": "检索条件有误。", "forbidden": "无权访问。",
		"record": "档案详情", "caseNo": "业务编号", "item": "事项", "sharing": "共享范围", "signer": "签名人", "package": "数据包",
		"documents": "文件", "original": "原件", "downloadEEP": "下载数据包 (EEP)", "reads": "利用记录", "who": "利用人", "what": "内容", "purpose": "目的",
		"purposeAsk": "本档案不予共享，请说明查阅目的：", "purposeSet": "确定", "gone": "该档案已销毁。", "needPurpose": "查阅此档案需要说明目的。",
		"accounts": "系统管理 · 账户", "display": "显示名", "role": "角色", "created": "创建时间", "remove": "删除", "newAccount": "新建账户",
		"departmentUSCC": "部门统一社会信用代码（部门与发证角色）", "create": "创建", "accountMade": "已创建账户",
		"accountBad.name": "用户名须为 2 至 32 个小写字母、数字或 . _ -，以字母开头。", "accountBad.display": "请填写显示名。",
		"accountBad.role": "请选择角色。", "accountBad.department": "部门与发证角色须填写有效的统一社会信用代码，其他角色不填。",
		"accountBad.password": "密码须为 12 至 256 个字符。", "accountBad.": "账户信息有误。", "accountExists": "该用户名已被使用。",
		"accountSelf": "不能删除自己的账户。", "admin": "系统管理",
		"role.department": "部门档案员", "role.archive": "档案馆（室）", "role.auditor": "审计", "role.issuer": "发证", "role.admin": "管理员",
		"disposal": "鉴定与销毁", "decided": "已处理", "decisionsMade": "本次鉴定结果", "pendingApproval": "待审批的销毁", "reason": "理由",
		"decidedBy": "鉴定人", "note": "意见", "approve": "批准", "refuse": "不批准", "yourOwn": "本人所作鉴定，须由另一名档案员审批",
		"nonePending": "没有待审批的销毁。", "candidates": "到期待鉴定档案", "title": "题名", "rule": "依据", "since": "到期日",
		"noCandidates": "没有到期待鉴定的档案。", "action": "处理", "action.destroy": "销毁（须另一名档案员批准）", "action.extend": "延长保管",
		"until": "延长至", "decide": "提交鉴定", "register": "销毁清册", "badUntil": "日期格式有误。", "noneTicked": "请勾选要鉴定的档案。",
		"approveFailed": "无法审批：该鉴定已处理。", "approveOwn": "不能审批本人所作的销毁鉴定。",
		"started": "开始", "finishedAt": "结束", "autoRefresh": "页面每 5 秒自动刷新。", "auditDue": "检测到期档案", "auditAll": "检测全部档案",
		"auditFailures": "最近未通过的检测", "failedChecks": "未通过的检测项", "noFailures": "没有未通过的检测。", "auditBusy": "已有检测在运行。",
		"origin": "日志标识", "root": "树根 (SM3)", "noWitness": "该检查点尚无见证签名。", "inclusion": "包含证明", "eventIndex": "事件序号",
		"lookUp": "查询", "proofFailed": "该序号不在最新检查点内。", "proofOf": "事件在检查点中的包含证明", "proofEmpty": "（树只有一个事件：无需证明）",
		"certificates": "电子证照", "certDone": "已完成", "certId": "证照标识", "holder": "持证主体", "version": "版本", "files": "文件", "revoke": "废止",
		"cert.valid": "有效", "cert.revoked": "已废止", "cert.superseded": "已被新版本替代", "verifyIt": "验证", "noCerts": "尚未签发证照。", "issueCert": "签发证照",
		"supersedes": "替代的证照标识（签发新版本时填写）", "typeCode": "证照类型代码", "certTitle": "证照名称", "certNumber": "证照编号",
		"holderCode": "持证主体代码（不会显示在网址或公开页面中）", "holderCodeType": "代码类型", "idCard": "公民身份号码", "usccCode": "统一社会信用代码",
		"validFrom": "有效期起", "validUntil": "有效期至（不填为长期）", "issuerName": "颁发机构", "certFields": "其他信息（每行 名称=内容）", "issue": "签发",
		"certRefused": "未能完成：",
		"transfers":   "移交与接收", "transferDue": "到期应移交的永久档案", "transferNone": "没有到期应移交的档案。", "transferCreate": "移交全部到期档案",
		"batches": "移交批次", "batch": "批次", "progress": "进度", "accepted": "已接收", "rejected": "被拒收（原因）", "receipt": "回执",
		"transfer.sending": "发送中", "transfer.done": "已完成", "transfer.failed": "失败", "retry": "重试", "receiptSigned": "已签收",
		"noBatches": "尚无移交批次。", "accessions": "接收（本馆收到的批次）", "transferRefused": "无法移交：没有到期档案，或已有批次在处理这些档案，或未配置档案馆。",
		"facet.department": "部门", "facet.year": "年度", "facet.retention": "保管期限", "facet.item_code": "事项", "facet.format": "格式", "facet.state": "状态",
		"Y": "永久", "D30": "30年", "D10": "10年", "archived": "已归档", "transferred": "已移交", "destroyed": "已销毁",
	},
	"en": {
		"appName": "dangan · electronic records", "home": "Home", "login": "Log in", "logout": "Log out", "name": "User name", "password": "Password",
		"loginFailed": "The user name or password is not right.", "loginLocked": "Too many wrong passwords: the account is locked for a while. Try again later.",
		"unavailable": "The service is unavailable for a moment. Try again later.", "notFound": "There is no such page.", "signedInAs": "Signed in as",
		"holdings": "Holdings", "packages": "packages", "bytes": "bytes", "byRetention": "By retention", "byState": "By state",
		"due": "Due", "dueNone": "Nothing is due.", "overdue": "overdue", "kind": "Kind", "archivalCode": "Archival code", "date": "Date",
		"audit": "Integrity audit", "auditNone": "No audit has run yet.", "auditRunning": "Running", "auditDone": "Finished", "failures": "failures",
		"log": "Log and witnesses", "checkpoint": "Latest checkpoint", "logSize": "entries", "noCheckpoint": "No checkpoint yet.", "witnesses": "witness cosignatures",
		"storage": "Storage", "ready": "ready", "notReady": "unavailable",
		"kind.retention-expiry": "retention ended: appraise", "kind.transfer-due": "transfer due", "kind.copy-deletable": "copy may go", "kind.audit-overdue": "audit overdue",
		"kind.late-archiving": "archived late", "language": "中文", "languageCode": "zh",
		"search": "Search", "searchHint": "words in titles, opinions, text; \"phrases\"", "refine": "Search within results", "within": "Within the results of",
		"found": "Found", "facetsOf": "facets count the newest", "clearFilters": "clear filters", "noHits": "No records found.", "nextPage": "Next page",
		"finished": "finished", "ingested": "archived", "badSearch": "The search is not valid.", "forbidden": "Not allowed.",
		"record": "Record", "caseNo": "Case number", "item": "Item", "sharing": "Sharing", "signer": "Signer", "package": "Package",
		"documents": "Documents", "original": "original", "downloadEEP": "Download the package (EEP)", "reads": "Reads", "who": "Who", "what": "What", "purpose": "Purpose",
		"purposeAsk": "This record is not shared: say why you read it:", "purposeSet": "Set", "gone": "This record was destroyed.", "needPurpose": "Reading this record needs a stated purpose.",
		"accounts": "Administration · accounts", "display": "Display name", "role": "Role", "created": "Created", "remove": "Remove", "newAccount": "New account",
		"departmentUSCC": "Department's USCC (department and issuer roles)", "create": "Create", "accountMade": "Account created",
		"accountBad.name": "A user name is 2 to 32 of a-z, 0-9, '.', '_', '-', starting with a letter.", "accountBad.display": "A display name is needed.",
		"accountBad.role": "Choose a role.", "accountBad.department": "The department and issuer roles need a valid USCC; other roles none.",
		"accountBad.password": "A password is 12 to 256 characters.", "accountBad.": "The account is not valid.", "accountExists": "That user name is taken.",
		"accountSelf": "You cannot remove your own account.", "admin": "Administration",
		"role.department": "department archivist", "role.archive": "archive", "role.auditor": "auditor", "role.issuer": "issuer", "role.admin": "admin",
		"disposal": "Appraisal and destruction", "decided": "Done", "decisionsMade": "Decisions made", "pendingApproval": "Destructions waiting for approval", "reason": "Reason",
		"decidedBy": "Decided by", "note": "Note", "approve": "Approve", "refuse": "Refuse", "yourOwn": "your own decision: a second archivist approves it",
		"nonePending": "No destruction waits for approval.", "candidates": "Records up for appraisal", "title": "Title", "rule": "Rule", "since": "Due since",
		"noCandidates": "No record is up for appraisal.", "action": "Action", "action.destroy": "destroy (a second archivist approves)", "action.extend": "keep longer",
		"until": "Keep until", "decide": "Decide", "register": "Destruction register", "badUntil": "The date is not valid.", "noneTicked": "Tick the records to decide on.",
		"approveFailed": "Cannot answer: the decision is no longer waiting.", "approveOwn": "You cannot approve a destruction you decided.",
		"started": "started", "finishedAt": "finished", "autoRefresh": "This page refreshes every 5 seconds.", "auditDue": "Audit what is due", "auditAll": "Audit every record",
		"auditFailures": "Latest failed audits", "failedChecks": "Failed checks", "noFailures": "No audit failed.", "auditBusy": "An audit is already running.",
		"origin": "Log origin", "root": "Root (SM3)", "noWitness": "No witness has cosigned this checkpoint yet.", "inclusion": "Inclusion proof", "eventIndex": "Event index",
		"lookUp": "Look up", "proofFailed": "That index is not in the latest checkpoint.", "proofOf": "Inclusion proof of event", "proofEmpty": "(a tree of one event: no proof needed)",
		"certificates": "E-certificates", "certDone": "Done", "certId": "Identifier", "holder": "Holder", "version": "Version", "files": "Files", "revoke": "Revoke",
		"cert.valid": "valid", "cert.revoked": "revoked", "cert.superseded": "superseded", "verifyIt": "verify", "noCerts": "No certificate issued yet.", "issueCert": "Issue a certificate",
		"supersedes": "Identifier it replaces (for a new version)", "typeCode": "Type code", "certTitle": "Title", "certNumber": "Number",
		"holderCode": "Holder's code (never shown in a URL or a public page)", "holderCodeType": "Code type", "idCard": "citizen identity number", "usccCode": "USCC",
		"validFrom": "Valid from", "validUntil": "Valid until (empty: no end)", "issuerName": "Issued by", "certFields": "Other fields (one name=value a line)", "issue": "Issue",
		"certRefused": "Not done:",
		"transfers":   "Transfers", "transferDue": "Permanent records due for transfer", "transferNone": "Nothing is due for transfer.", "transferCreate": "Transfer everything due",
		"batches": "Batches", "batch": "Batch", "progress": "Progress", "accepted": "Accepted", "rejected": "Rejected (reasons)", "receipt": "Receipt",
		"transfer.sending": "sending", "transfer.done": "done", "transfer.failed": "failed", "retry": "Retry", "receiptSigned": "signed receipt",
		"noBatches": "No batch yet.", "accessions": "Accessions received here", "transferRefused": "Cannot transfer: nothing is due, another batch holds these records, or no county archive is configured.",
		"facet.department": "Department", "facet.year": "Year", "facet.retention": "Retention", "facet.item_code": "Item", "facet.format": "Format", "facet.state": "State",
		"Y": "permanent", "D30": "30 years", "D10": "10 years", "archived": "archived", "transferred": "transferred", "destroyed": "destroyed",
	},
}

// language is the page's language: ?lang= (remembered in a cookie), the cookie, or Chinese.
func language(w http.ResponseWriter, r *http.Request) string {
	if l := r.URL.Query().Get("lang"); words[l] != nil {
		http.SetCookie(w, &http.Cookie{Name: "dangan_lang", Value: l, Path: Prefix, SameSite: http.SameSiteStrictMode, HttpOnly: true})
		return l
	}
	if ck, err := r.Cookie("dangan_lang"); err == nil && words[ck.Value] != nil {
		return ck.Value
	}
	return "zh"
}
