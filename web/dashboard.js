/*
 * dashboard.js - the operators' dashboard (docs/dashboard.md).
 *
 * Every 5 s: GET /healthz, the active alerts, the sites, the recently
 * cleared alerts and, when a site is selected, its devices (for chargers
 * with their current state, to show every port's). Alerts are
 * acknowledged with POST /api/v1/alerts/{id}/ack {"by": name}.
 *
 * The active alerts are asked per severity: the API lists alerts newest
 * first up to a limit, so one list of all severities could lose a critical
 * alert behind a thousand newer minor ones. The counts per severity come
 * from GET /api/v1/alerts/counts, which no limit cuts, and a list cut by its
 * limit says so on the page.
 *
 * The alert tables are not redrawn while the operator points at or works
 * in them (operatorIn): a click hits the alert the operator saw. An
 * acknowledgement's answer redraws its row at once, and lists fetched
 * before it cannot bring the old state back (overlay). A 200 that is not
 * the expected JSON (a proxy's page) is a failure, never "no alerts".
 *
 * Times are shown in their site's time zone (the "timezone" of each site in
 * /api/v1/sites; CONTRACT §1) with the offset, whatever the browser's zone.
 *
 * Security: everything the API returns is untrusted; alert details and
 * readings carry text a device wrote. The page is built with createElement
 * and textContent only (never a property or method that parses markup:
 * tests/unit/test_web.c refuses their names in this file), so such text is
 * always shown as text. The collector serves this file with a
 * Content-Security-Policy that forbids inline script and style, and other
 * origins: keep it that way (no inline handlers, no style attributes).
 *
 * URLs are relative to the page, so it also works behind a reverse proxy
 * that serves the collector under a path (https://ops.example.org/sitepulse/).
 *
 * The API token is asked once and kept in sessionStorage (this tab only);
 * a kiosk screen may pass it as #token=... in the URL fragment, which never
 * reaches the server and is removed from the address bar at once.
 */
(function () {
	"use strict";

	var REFRESH_MS = 5000;
	var RETRY_MAX_MS = 30000;       /* longest wait between tries while the collector is unreachable */
	var FETCH_TIMEOUT_MS = 10000;
	var SEVERITIES = ["critical", "major", "minor", "warning"];
	var ACTIVE_LIMIT = 1000;        /* active alerts listed per severity (newest first) */
	var CLEARED_SHOWN = 20;         /* "Recently cleared": the latest cleared ... */
	var CLEARED_ASKED = 200;        /* ... of this many newest opened (all, and critical) */
	var PAUSE_IDLE_MS = 60000;      /* a pointer resting on a table this long no longer pauses it */
	var ACK_KEEP_MS = 300000;       /* how long an acknowledgement's answer overrides older lists */
	var DEFAULT_ZONE = "Asia/Shanghai"; /* CONTRACT §1: a site the sites list has not named */
	var TOKEN_KEY = "sitepulse.token";
	var NAME_KEY = "sitepulse.name";
	var SITE_KEY = "sitepulse.site";
	var ID_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
	var TOKEN_RE = /^[\x21-\x7e]{1,1024}$/;

	var st = {
		token: null,
		name: null,
		site: null,        /* the selected site, or null */
		busy: false,       /* a refresh is in flight */
		again: false,      /* refresh once more when it ends */
		gen: 0,            /* bumped when the token changes: late answers are dropped */
		lastOk: 0,         /* Date.now() of the last complete refresh */
		down: 0,           /* refreshes in a row that found the collector unreachable */
		nextTry: 0,        /* while down: Date.now() before which no try is made */
		role: null,        /* the token's: "viewer", "operator", "unknown", "asking"; null = ask */
		acking: new Set(), /* alert ids with an acknowledgement in flight */
		pendingAck: null,  /* the alert (as shown) to acknowledge once the name is given */
		sigs: {},          /* table id -> signature of what it shows */
		zones: new Map(),  /* site -> its IANA time zone, from /api/v1/sites */
		seq: 0,            /* bumped as each refresh starts */
		acked: new Map(),  /* alert id -> {alert, seq, until}: acknowledged here (see overlay) */
		pending: {},       /* alert table id -> the redraw deferred while the operator is in it */
		pointerAt: {},     /* alert table id -> Date.now() of the last pointer move in it */
		critSeen: null,    /* ids of the active critical alerts last listed (null: none yet) */
		counts: null,      /* {critical, total} for the tab title, null when unknown */
		titleMark: ""      /* "(disconnected) ", "(stale) " or "" before the tab title */
	};
	var todays = new Map();      /* IANA zone -> today's date there (cleared every tick) */
	var zoneFormats = new Map(); /* IANA zone -> Intl.DateTimeFormat, null if unknown here */

	/* ------------------------------------------------------------ helpers */

	function $(id) {
		return document.getElementById(id);
	}

	/*
	 * h("td", {class: "x", text: "..."}, child...): an element. Only these
	 * properties exist, and each sets text or a plain attribute value, never
	 * markup. Children are nodes or strings (strings become text nodes).
	 */
	function h(tag, props) {
		var e = document.createElement(tag);
		var k, v, i, c;
		for (k in props || {}) {
			v = props[k];
			if (v === undefined || v === null || v === false)
				continue;
			if (k === "class")
				e.className = v;
			else if (k === "text")
				e.textContent = String(v);
			else if (k === "title")
				e.title = String(v);
			else if (k === "type")
				e.type = v;
			else if (k === "colspan")
				e.colSpan = v;
			else if (k === "onclick")
				e.addEventListener("click", v);
			else if (k.slice(0, 5) === "data-")
				e.setAttribute(k, String(v));
			else
				throw new Error("h: unsupported property " + k);
		}
		for (i = 2; i < arguments.length; i++) {
			c = arguments[i];
			if (c === null || c === undefined || c === false)
				continue;
			e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
		}
		return e;
	}

	function storageGet(key) {
		try {
			return sessionStorage.getItem(key);
		} catch (e) {
			return null; /* storage disabled: the value lives in this page only */
		}
	}

	function storageSet(key, value) {
		try {
			if (value === null)
				sessionStorage.removeItem(key);
			else
				sessionStorage.setItem(key, value);
		} catch (e) {
			/* as above */
		}
	}

	function isInt(v) {
		return typeof v === "number" && Number.isSafeInteger(v);
	}

	function str(v) {
		return typeof v === "string" ? v : v === null || v === undefined ? "" : String(v);
	}

	function pad(n) {
		return n < 10 ? "0" + n : String(n);
	}

	/* The zone a site's times are shown in. */
	function zoneOf(site) {
		return st.zones.get(site) || DEFAULT_ZONE;
	}

	/*
	 * The zone of times that belong to no site (the last update): the sites'
	 * zone when they share one, else UTC (shown with its "Z").
	 */
	function pageZone() {
		var all = new Set(st.zones.values());
		return all.size === 0 ? DEFAULT_ZONE : all.size === 1 ? all.values().next().value : "UTC";
	}

	function zoneFormat(zone) {
		if (!zoneFormats.has(zone)) {
			var f = null;
			try {
				f = new Intl.DateTimeFormat("en-US", {
					timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit",
					day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit"});
			} catch (e) {
				f = null; /* RangeError: a zone this browser does not know; UTC then */
			}
			zoneFormats.set(zone, f);
		}
		return zoneFormats.get(zone);
	}

	/*
	 * ts (whole seconds) on the wall clock of zone: {date: "2026-11-28",
	 * time: "14:03:05", offset: "+08:00", known: true}. The offset is what
	 * the zone's rules give at that instant (summer time included). A zone
	 * the browser lacks gives UTC, offset "Z", known false.
	 */
	function zoned(ts, zone) {
		var f = zoneFormat(zone);
		var sec = Math.floor(ts / 1000) * 1000;
		var d = new Date(sec);
		var y = d.getUTCFullYear(), mo = d.getUTCMonth() + 1, day = d.getUTCDate();
		var hh = d.getUTCHours(), mi = d.getUTCMinutes(), ss = d.getUTCSeconds();
		if (f) {
			var p = {};
			f.formatToParts(d).forEach(function (x) {
				p[x.type] = x.value;
			});
			y = Number(p.year);
			mo = Number(p.month);
			day = Number(p.day);
			hh = Number(p.hour) % 24;
			mi = Number(p.minute);
			ss = Number(p.second);
		}
		var off = Math.round((Date.UTC(y, mo - 1, day, hh, mi, ss) - sec) / 60000);
		var a = Math.abs(off);
		return {date: y + "-" + pad(mo) + "-" + pad(day),
			time: pad(hh) + ":" + pad(mi) + ":" + pad(ss),
			offset: !f ? "Z" : (off < 0 ? "-" : "+") + pad(Math.floor(a / 60)) + ":" + pad(a % 60),
			known: !!f};
	}

	/*
	 * Today's date in zone. Part of every table's signature, so that rows
	 * drawn as "today" (time only) are drawn again with their date once the
	 * day has changed there.
	 */
	function todayIn(zone) {
		if (!todays.has(zone))
			todays.set(zone, zoned(Date.now(), zone).date);
		return todays.get(zone);
	}

	/*
	 * ISO 8601 in the site's zone with its offset: "14:03:05+08:00" when it
	 * is today there, else "2026-11-28T14:03:05+08:00".
	 */
	function fmtTime(ts, zone) {
		if (!isInt(ts))
			return "–";
		var z = zoned(ts, zone);
		if (z.date === todayIn(zone))
			return z.time + z.offset;
		return z.date + "T" + z.time + z.offset;
	}

	/* The tooltip: the full local time, the zone's name and UTC. */
	function fmtTimeTitle(ts, zone) {
		var z = zoned(ts, zone);
		return z.date + "T" + z.time + z.offset + " " +
		       (z.known ? zone : "(UTC: this browser does not know " + zone + ")") +
		       " · " + new Date(ts).toISOString().replace(".000Z", "Z");
	}

	/* A span of s >= 0 seconds as people say it. */
	function fmtSpan(s) {
		var m = Math.floor(s / 60), hr = Math.floor(m / 60);
		if (s < 60)
			return s + " s";
		if (m < 60)
			return m + " min";
		if (hr < 48)
			return hr + " h " + (m % 60) + " min";
		return Math.floor(hr / 24) + " d";
	}

	function fmtAge(ts) {
		var s = Math.round((Date.now() - ts) / 1000);
		/*
		 * A time more than a minute after this browser's: the device's clock
		 * runs ahead (the collector accepts up to 24 h), or this one's is
		 * behind. Said so, not "just now": its readings' times are off.
		 */
		if (s < -60)
			return fmtSpan(-s) + " ahead of this clock";
		if (s < 5)
			return "just now"; /* also a device clock slightly ahead of ours */
		return fmtSpan(s) + " ago";
	}

	/* A time cell's content: the site's time and a live age (see updateAges). */
	function timeNodes(ts, zone) {
		if (!isInt(ts))
			return [h("span", {class: "muted", text: "–"})];
		return [h("span", {class: "time", text: fmtTime(ts, zone), title: fmtTimeTitle(ts, zone)}),
			h("span", {class: "age", "data-ts": ts, text: fmtAge(ts)})];
	}

	function timeCell(ts, cls, zone) {
		var td = h("td", {class: cls});
		timeNodes(ts, zone).forEach(function (n) {
			td.appendChild(n);
		});
		return td;
	}

	function updateAges() {
		var list = document.querySelectorAll(".age[data-ts]");
		for (var i = 0; i < list.length; i++) {
			var ts = Number(list[i].getAttribute("data-ts"));
			if (isInt(ts))
				list[i].textContent = fmtAge(ts);
		}
	}

	function sevClass(sev) {
		return SEVERITIES.indexOf(sev) >= 0 ? sev : "unknown";
	}

	function sevRank(sev) {
		var i = SEVERITIES.indexOf(sev);
		return i < 0 ? SEVERITIES.length : i;
	}

	function where(a) {
		var s = str(a.site) + " / " + str(a.dev);
		return isInt(a.port) ? s + " / port " + a.port : s;
	}

	function stateText(a) {
		var s = str(a.state);
		if (s === "active_unack" || s === "cleared_unack")
			return "unacknowledged";
		if (s === "active_ack" || s === "cleared_ack")
			return "acknowledged by " + (str(a.acked_by) || "?") +
			       (isInt(a.acked_at) ? " at " + fmtTime(a.acked_at, zoneOf(str(a.site))) : "");
		return s;
	}

	function unacked(a) {
		return a.state === "active_unack" || a.state === "cleared_unack";
	}

	/* Bytes of a string in UTF-8 (the API limits names in bytes). */
	function utf8Len(s) {
		return new TextEncoder().encode(s).length;
	}

	/*
	 * The error text of an API answer: its {"error": "..."} or the status;
	 * for a 200 of the wrong form (say a proxy's HTML page), that.
	 */
	function errorText(r) {
		if (r.status === 200)
			return r.malformed ? "the answer is not JSON" : "the answer is not of the expected form";
		if (r.body && typeof r.body === "object" && typeof r.body.error === "string")
			return r.body.error;
		return "HTTP " + r.status;
	}

	/* An answer the page can use: 200 and of the form its call expects. */
	function good(r) {
		return r.status === 200 && !r.malformed && (!r.shape || r.shape(r.body));
	}

	function isList(b) {
		return Array.isArray(b);
	}

	function isObject(b) {
		return !!b && typeof b === "object" && !Array.isArray(b);
	}

	function isCounts(b) {
		return isObject(b) && isObject(b.active);
	}

	/* ------------------------------------------------------------ banner, notice */

	/*
	 * The banner; what is shown (tables and header counts) is dimmed as
	 * possibly out of date. mark goes before the tab title: "(disconnected) "
	 * or "(stale) " when the data could not be refreshed.
	 */
	function showBanner(text, mark) {
		$("banner").textContent = text;
		$("banner").hidden = false;
		$("main").classList.add("stale");
		$("top").classList.add("stale");
		st.titleMark = mark || "";
		showTitle();
	}

	function hideBanner() {
		$("banner").hidden = true;
		$("main").classList.remove("stale");
		$("top").classList.remove("stale");
		st.titleMark = "";
		showTitle();
	}

	/* The tab title: the last known counts, after titleMark. */
	function showTitle() {
		var c = st.counts;
		document.title = st.titleMark + (!c ? "" : c.critical ? "(" + c.critical + " critical) " :
						 c.total ? "(" + c.total + ") " : "") + "sitepulse";
	}

	/* The header's time when the data could not be refreshed. */
	function showStaleTime() {
		$("updated").textContent = st.lastOk ? "last update " + fmtTime(st.lastOk, pageZone()) +
			" (stale)" : "no data yet";
	}

	/* The header as before any data: nothing known (a new token's data is not the old one's). */
	function resetHeader() {
		SEVERITIES.forEach(function (s) {
			$("count-" + s).textContent = "–";
			$("count-" + s).parentNode.classList.remove("zero");
		});
		$("health").className = "pill pill-unknown";
		$("health").textContent = "collector: …";
		$("updated").textContent = "";
		$("announce").textContent = "";
		st.counts = null;
		st.lastOk = 0;
		st.critSeen = null;
		hideBanner();
	}

	function showNotice(text, isError) {
		$("notice-text").textContent = text;
		$("notice").classList.toggle("notice-error", !!isError);
		$("notice").hidden = false;
	}

	/* ------------------------------------------------------------ token and name */

	/*
	 * The token of a "#token=..." fragment, or null. Read by hand, not with
	 * URLSearchParams, which would turn a "+" of the token into a space.
	 */
	function tokenFromFragment() {
		var frag = location.hash ? location.hash.slice(1) : "";
		var parts = frag.split("&");
		for (var i = 0; i < parts.length; i++) {
			if (parts[i].slice(0, 6) !== "token=")
				continue;
			/* out of the address bar (it may stay in the browser's history: docs/dashboard.md) */
			history.replaceState(null, "", location.pathname + location.search);
			try {
				return decodeURIComponent(parts[i].slice(6));
			} catch (e) {
				return ""; /* bad %-escape: refused by useToken */
			}
		}
		return null;
	}

	function askToken(reason) {
		st.token = null;
		st.role = null;
		st.gen++;
		$("notice").hidden = true; /* it spoke of the old token's doings */
		storageSet(TOKEN_KEY, null);
		$("main").hidden = true;
		$("sign-out").hidden = true;
		resetHeader(); /* the counts, health and time were the old token's: none stays frozen */
		forgetShown();
		$("login-reason").textContent = reason ||
			"Enter an API token (viewer or operator) to see the sites.";
		$("login").hidden = false;
		$("token-input").value = "";
		$("token-input").focus();
	}

	function useToken(t) {
		t = str(t).trim();
		if (!TOKEN_RE.test(t)) {
			askToken("That is not a token (1–1024 printable characters, no spaces).");
			return;
		}
		st.token = t;
		st.role = null;
		st.gen++;
		showName();
		st.down = 0; /* try at once */
		resetHeader();
		forgetShown();
		$("notice").hidden = true;
		storageSet(TOKEN_KEY, t);
		$("login").hidden = true;
		$("main").hidden = false;
		$("sign-out").hidden = false;
		refreshSoon();
	}

	function showName() {
		var viewer = st.role === "viewer";
		$("operator").textContent = viewer ? "viewer token: read only" :
			st.name ? "acknowledging as " + st.name : "";
		$("set-name").hidden = viewer;
		$("set-name").textContent = st.name ? "change name" : "set your name";
	}

	/*
	 * The token's role (GET /api/v1/me, our extension), asked once per token
	 * with the next refresh: a viewer is offered no Acknowledge button the
	 * collector would refuse (403). Until the answer, and from a collector
	 * without /me (404), the buttons show and the collector decides; a 403
	 * to an acknowledgement teaches the same. Asked again after a failure.
	 */
	function learnRole(gen) {
		st.role = "asking";
		apiGet("api/v1/me").then(function (r) {
			if (gen !== st.gen)
				return;
			var role = r.status === 200 && r.body ? r.body.role : null;
			if (role === "viewer" || role === "operator")
				setRole(role);
			else
				st.role = r.status === 404 ? "unknown" : null;
		}, function () {
			if (gen === st.gen)
				st.role = null;
		});
	}

	function setRole(role) {
		if (st.role === role)
			return;
		st.role = role;
		showName();
		if (role === "viewer") /* at once and in place, even in a paused table */
			Array.from(document.querySelectorAll("button.ack")).forEach(function (b) {
				b.remove();
			});
		st.sigs["active-alerts"] = null; /* their rows' buttons change */
		st.sigs["cleared-alerts"] = null;
		refreshSoon();
	}

	function openNameDialog() {
		var dlg = $("name-dialog");
		$("name-input").value = st.name || "";
		$("name-error").hidden = true;
		if (!dlg.open)
			dlg.showModal();
		$("name-input").focus();
	}

	function onNameSubmit(ev) {
		ev.preventDefault(); /* never a form submission (CSP form-action 'none') */
		var v = $("name-input").value.trim();
		var bad = !v ? "Enter your name." :
			  utf8Len(v) > 64 ? "At most 64 bytes, please shorten it." :
			  /[\x00-\x1f\x7f]/.test(v) ? "No control characters." : null;
		if (bad) {
			$("name-error").textContent = bad;
			$("name-error").hidden = false;
			return;
		}
		var a = st.pendingAck;
		st.pendingAck = null;
		st.name = v;
		storageSet(NAME_KEY, v);
		showName();
		$("name-dialog").close();
		if (a !== null)
			acknowledge(a);
	}

	/* ------------------------------------------------------------ HTTP */

	/*
	 * One request: resolves to {status, body, malformed, path} (body the
	 * parsed JSON or null; malformed when the body is not JSON); rejects
	 * with {unreachable: true} on a network error or after FETCH_TIMEOUT_MS.
	 */
	function request(method, path, payload, auth) {
		var ctl = new AbortController();
		var timer = setTimeout(function () {
			ctl.abort();
		}, FETCH_TIMEOUT_MS);
		var headers = {"Accept": "application/json"};
		if (auth)
			headers["Authorization"] = "Bearer " + st.token;
		if (payload !== undefined)
			headers["Content-Type"] = "application/json";
		return fetch(path, {
			method: method,
			headers: headers,
			body: payload === undefined ? undefined : JSON.stringify(payload),
			cache: "no-store",
			credentials: "omit",
			redirect: "error",
			signal: ctl.signal
		}).then(function (res) {
			/*
			 * 502 and 504 are a reverse proxy's (the collector sends
			 * neither): the collector behind it is not answering, as
			 * unreachable as without the proxy, and waited for alike.
			 */
			if (res.status === 502 || res.status === 504)
				throw {name: "ProxyError", status: res.status};
			return res.text().then(function (text) {
				var body = null, malformed = false;
				try {
					body = text ? JSON.parse(text) : null;
				} catch (e) {
					malformed = true; /* e.g. a proxy's HTML page: never taken for "nothing" */
				}
				return {status: res.status, body: body, malformed: malformed, path: path};
			});
		}).catch(function (e) { /* fetch() or reading the body: the network */
			throw {unreachable: true, cause: e};
		}).finally(function () {
			clearTimeout(timer);
		});
	}

	/* An API call; shape(body) says whether a 200's body is what the call expects (good()). */
	function apiGet(path, shape) {
		return request("GET", path, undefined, true).then(function (r) {
			r.shape = shape;
			return r;
		});
	}

	/* ------------------------------------------------------------ refresh */

	function refreshSoon() {
		if (st.busy)
			st.again = true;
		else
			refresh();
	}

	/*
	 * The wait before the next try after the down-th unreachable refresh in
	 * a row: 5 s, 10 s, 20 s, then 30 s.
	 */
	function retryDelay(down) {
		return Math.min(REFRESH_MS * Math.pow(2, Math.max(0, down - 1)), RETRY_MAX_MS);
	}

	/*
	 * While the collector is unreachable, each try is one GET /healthz (one
	 * failed request in the console, not one per table), at growing
	 * intervals; once it answers, the full refresh follows at once.
	 */
	function refresh() {
		if (!st.token || st.busy)
			return;
		if (st.down > 0) {
			if (Date.now() < st.nextTry)
				return;
			st.busy = true;
			var g = st.gen;
			request("GET", "healthz", undefined, false).then(function () {
				st.down = 0;
				st.again = st.again || g === st.gen;
			}, function (e) {
				if (g === st.gen)
					unreachable(e);
			}).finally(refreshEnded);
			return;
		}
		st.busy = true;
		var gen = st.gen;
		var site = st.site;
		var seq = ++st.seq; /* acknowledgements answered after this start override its lists */
		if (st.role === null)
			learnRole(gen);
		var health = request("GET", "healthz", undefined, false);
		var calls = [
			activeAlerts(),
			apiGet("api/v1/sites", isList),
			clearedAlerts(),
			site ? devicesWithReadings(site) : Promise.resolve(null)
		];
		Promise.all([health.catch(function () {
			return null;
		})].concat(calls)).then(function (r) {
			if (gen !== st.gen)
				return; /* the token changed meanwhile */
			renderHealth(r[0]);
			var answers = r[1].answers.concat([r[2]], r[3], r[4] ? [r[4].devices] : []);
			if (answers.some(function (x) {
				return x.status === 401;
			})) {
				askToken("The collector refused the token (401). Enter a valid token.");
				return;
			}
			/* a 200 that is not JSON of the expected form (a proxy's page) is a failure too */
			var failed = answers.filter(function (x) {
				return !good(x);
			});
			if (r[0] && r[0].status === 200 && !isObject(r[0].body))
				failed.push(r[0]);
			if (good(r[2]))
				takeZones(r[2].body); /* first: every time below is shown in its site's zone */
			if (r[1].answers.every(good))
				renderActive(r[1], seq);
			if (good(r[2]))
				renderSites(r[2].body);
			if (r[3].every(good))
				renderCleared(r[3], seq);
			if (r[4] && site === st.site && (r[4].devices.status !== 200 || good(r[4].devices)))
				renderDevices(site, r[4]);
			if (failed.length) {
				showBanner("collector error: " + failed.map(function (x) {
					return x.path.split("?")[0] + ": " + errorText(x);
				}).join("; ") + " — retrying every " + REFRESH_MS / 1000 + " s; what is shown is " +
					   "the last good data", "(stale) ");
				showStaleTime();
			} else {
				st.lastOk = Date.now();
				st.down = 0;
				if (r[0] && r[0].status !== 200)
					showBanner(renderHealth(r[0]) + " — new readings and alerts may not be " +
						   "arriving; what is shown may be out of date");
				else
					hideBanner();
				$("updated").textContent = "updated " + fmtTime(st.lastOk, pageZone());
			}
		}).catch(function (e) {
			if (gen !== st.gen)
				return;
			if (!e || e.unreachable !== true) {
				/* a bug of this page, not the network: say so, and let the console have it */
				showBanner("dashboard error: " + e + " — retrying every " + REFRESH_MS / 1000 + " s");
				throw e;
			}
			unreachable(e);
		}).finally(function () {
			updateAges();
			refreshEnded();
		});
	}

	/* A refresh (or a try while down) ended: the one asked for meanwhile follows. */
	function refreshEnded() {
		st.busy = false;
		if (st.again) {
			st.again = false;
			refresh();
		}
	}

	/* The collector did not answer (e: request()'s rejection): say so, and wait longer. */
	function unreachable(e) {
		st.down++;
		var wait = retryDelay(st.down);
		st.nextTry = Date.now() + wait - 500; /* the 5 s tick that reaches it tries */
		renderHealth(null);
		var why = e && e.cause ? e.cause : {};
		/* the counts, kept in the title, are old */
		showBanner("collector unreachable" + (why.name === "AbortError" ?
			   " (no answer in " + FETCH_TIMEOUT_MS / 1000 + " s)" : why.name === "ProxyError" ?
			   " (the proxy answers " + why.status + ")" : "") +
			   " — next try in " + Math.round(wait / 1000) + " s" +
			   (st.lastOk ? " (last update " + fmtTime(st.lastOk, pageZone()) + ")" : ""),
			   "(disconnected) ");
		showStaleTime();
	}

	/*
	 * The active alerts, so that the most severe can never be cut off by
	 * newer ones: the counts per severity (never cut), then for each severity
	 * that has any its own list of the ACTIVE_LIMIT newest. Resolves to
	 * {counts: answer, lists: {severity: answer}, answers: all answers}.
	 */
	function activeAlerts() {
		return apiGet("api/v1/alerts/counts", isCounts).then(function (counts) {
			var out = {counts: counts, lists: {}, answers: [counts]};
			if (!good(counts))
				return out;
			var c = counts.body.active;
			return Promise.all(SEVERITIES.filter(function (s) {
				return num(c[s]) > 0;
			}).map(function (s) {
				return apiGet("api/v1/alerts?state=active&severity=" + s + "&limit=" +
					      ACTIVE_LIMIT, isList).then(function (r) {
					out.lists[s] = r;
					out.answers.push(r);
				});
			})).then(function () {
				return out;
			});
		});
	}

	/*
	 * The cleared alerts to pick "Recently cleared" from. The API lists them
	 * newest opened first, but the table wants the latest cleared: an alert
	 * opened long ago that cleared just now is behind every alert opened
	 * since. So the page asks for the CLEARED_ASKED newest opened of all
	 * severities and, apart, of the critical ones (a long critical alert is
	 * then only missed behind that many newer critical ones), and keeps the
	 * latest cleared (renderCleared). Resolves to the two answers.
	 */
	function clearedAlerts() {
		return Promise.all([
			apiGet("api/v1/alerts?state=cleared&limit=" + CLEARED_ASKED, isList),
			apiGet("api/v1/alerts?state=cleared&severity=critical&limit=" + CLEARED_ASKED, isList)
		]);
	}

	/*
	 * The site's devices, each charger with its current state (current=1,
	 * our extension: its newest station record and each port's newest of
	 * the last 2 minutes), in one request however many chargers there are.
	 * Resolves to {devices: answer, readings: Map dev -> records}.
	 */
	function devicesWithReadings(site) {
		return apiGet("api/v1/devices?site=" + encodeURIComponent(site) + "&current=1", isList).then(
			function (devs) {
				var out = {devices: devs, readings: new Map()};
				if (devs.status === 200 && Array.isArray(devs.body))
					devs.body.forEach(function (d) {
						if (d && d.kind === "charger" && Array.isArray(d.current))
							out.readings.set(str(d.dev), d.current);
					});
				return out;
			});
	}

	/* ------------------------------------------------------------ rendering */

	/* Rebuilds tbody only when what it shows changed (keeps buttons stable between refreshes). */
	function fillTable(id, sig, rows) {
		if (st.sigs[id] === sig)
			return;
		st.sigs[id] = sig;
		var tbody = $(id).tBodies[0];
		tbody.replaceChildren.apply(tbody, rows);
	}

	/*
	 * The alert tables are not redrawn under the operator: while the pointer
	 * moves over one (or rested there less than PAUSE_IDLE_MS ago) or the
	 * keyboard focus is in it, a new list waits, a line above the table says
	 * how many alerts it would add, and it is drawn once the pointer or the
	 * focus leaves. A click then always hits the row the operator saw: a new
	 * critical alert at the top cannot shift the rows between pointing and
	 * clicking. A focus that came from a click (not :focus-visible) does not
	 * hold the table.
	 */
	function operatorIn(id) {
		var t = $(id), f = document.activeElement;
		if (f && f !== document.body && t.contains(f) && f.matches(":focus-visible"))
			return true;
		return t.matches(":hover") && Date.now() - (st.pointerAt[id] || 0) < PAUSE_IDLE_MS;
	}

	/* Draws an alert table's list, or keeps it for later (above). */
	function fillAlerts(id, list, seq, cleared) {
		var sig = alertsSig(list, seq);
		var next = {sig: sig, list: list, seq: seq, cleared: cleared};
		if (st.sigs[id] === sig)
			st.pending[id] = null;
		else if (operatorIn(id))
			st.pending[id] = next;
		else
			drawAlerts(id, next);
		showPaused(id);
	}

	function drawAlerts(id, p) {
		st.pending[id] = null;
		st.sigs[id] = p.sig;
		var rows = p.list.map(function (a) {
			return alertRow(overlay(a, p.seq), p.cleared);
		});
		var tbody = $(id).tBodies[0];
		tbody.replaceChildren.apply(tbody, rows.length ? rows :
			[emptyRow(p.cleared ? 8 : 7, p.cleared ? "No cleared alerts." : "No active alerts.")]);
	}

	/* The pointer or the focus left an alert table (or the tick): draw what waited. */
	function resume(id) {
		if (st.pending[id] && !operatorIn(id))
			drawAlerts(id, st.pending[id]);
		showPaused(id);
	}

	function showPaused(id) {
		var p = st.pending[id], el = $(id + "-paused");
		if (!p) {
			el.hidden = true;
			return;
		}
		var shown = new Set(Array.from($(id).tBodies[0].rows).map(function (tr) {
			return tr.getAttribute("data-alert-id");
		}));
		var n = p.list.filter(function (a) {
			return !shown.has(String(a.id));
		}).length;
		el.textContent = (n ? n + " new — " : "changes waiting — ") +
			"updates paused while the pointer or the keyboard is on this table";
		el.hidden = false;
	}

	/* Forgets what the alert tables showed (a new token: nothing of the old one's stays). */
	function forgetShown() {
		st.sigs = {};
		st.pending = {};
		st.pointerAt = {};
		st.acked = new Map();
		["active-alerts", "cleared-alerts"].forEach(function (id) {
			$(id + "-paused").hidden = true;
		});
	}

	/*
	 * The alert as this page knows it: a list from a refresh that started
	 * (seq) before an acknowledgement made here was answered is older than
	 * that answer, which then wins (the row must not come back unacknowledged
	 * with its button). A 409 (someone else's) gives no alert: the state alone
	 * is set to acknowledged.
	 */
	function overlay(a, seq) {
		var e = isInt(a.id) ? st.acked.get(a.id) : undefined;
		if (!e || seq > e.seq)
			return a;
		if (e.alert)
			return e.alert;
		return unacked(a) ? Object.assign({}, a, {state: str(a.state).replace("_unack", "_ack")}) : a;
	}

	function emptyRow(cols, text) {
		return h("tr", {class: "empty"}, h("td", {colspan: cols, text: text}));
	}

	function renderHealth(r) {
		var pill = $("health");
		var cls = "pill-bad";
		var text;
		if (r === null) {
			text = "collector unreachable";
		} else if (r.status === 200 && isObject(r.body)) {
			cls = "pill-ok";
			text = "collector ok";
		} else if (r.status === 200) {
			text = "collector health: not the expected answer";
		} else {
			var b = r.body && typeof r.body === "object" ? r.body : {};
			var why = [];
			if (b.mqtt && b.mqtt !== "connected")
				why.push("mqtt " + str(b.mqtt));
			if (b.store && b.store !== "ok")
				why.push("store " + str(b.store));
			text = "collector unhealthy" + (why.length ? ": " + why.join(", ") : " (HTTP " + r.status + ")");
		}
		pill.className = "pill " + cls;
		pill.textContent = text;
		return text;
	}

	function ackButton(a) {
		if (!unacked(a) || !isInt(a.id) || a.id < 1 || st.role === "viewer")
			return null;
		var busy = st.acking.has(a.id);
		var b = h("button", {type: "button", class: "ack", "data-alert-id": a.id,
				    title: "acknowledge " + str(a.rule) + " at " + where(a),
				    text: busy ? "Acknowledging…" : "Acknowledge",
				    onclick: function () {
					    onAckClick(a); /* the alert this row shows, whatever came since */
				    }});
		b.disabled = busy;
		return b;
	}

	function alertRow(a, cleared) {
		var sev = sevClass(a.severity);
		var tr = h("tr", {class: "sev-row-" + sev + (unacked(a) ? " unacked" : ""),
				  "data-alert-id": isInt(a.id) ? a.id : null},
			   h("td", {class: "c-sev"}, h("span", {class: "badge sev-" + sev, text: str(a.severity)})),
			   h("td", {class: "c-rule", text: str(a.rule)}),
			   h("td", {class: "c-where", text: where(a)}),
			   h("td", {class: "c-detail", text: str(a.detail)}),
			   timeCell(a.opened_at, "c-opened", zoneOf(str(a.site))));
		if (cleared)
			tr.appendChild(timeCell(a.cleared_at, "c-cleared", zoneOf(str(a.site))));
		tr.appendChild(h("td", {class: "c-state", text: stateText(a)}));
		tr.appendChild(h("td", {class: "c-action"}, ackButton(a)));
		return tr;
	}

	/* What an alert table shows; with today's date where it is drawn (times omit it for today). */
	function alertsSig(list, seq) {
		return JSON.stringify(list.map(function (a) {
			a = overlay(a, seq);
			var zone = zoneOf(str(a.site));
			return [a.id, a.state, a.acked_by, a.acked_at, a.cleared_at, a.detail, a.severity,
				st.acking.has(a.id), zone, todayIn(zone)];
		}));
	}

	/* The sites' time zones, kept until the next answer (an alert's site may be missing). */
	function takeZones(body) {
		if (!Array.isArray(body))
			return;
		st.zones = new Map();
		body.forEach(function (s) {
			if (s && typeof s === "object" && typeof s.site === "string" &&
			    typeof s.timezone === "string" && s.timezone)
				st.zones.set(s.site, s.timezone);
		});
	}

	/* res: activeAlerts()'s answers, all good; seq: the refresh's. */
	function renderActive(res, seq) {
		var counts = {}, total = 0, cut = [], list = [];
		var c = res.counts.body.active;
		SEVERITIES.forEach(function (s) {
			var r = res.lists[s];
			var got = r && Array.isArray(r.body) ? r.body.filter(function (a) {
				return a && typeof a === "object" && a.severity === s;
			}) : [];
			/* the list may be a moment newer than the count: the larger is the truth */
			counts[s] = Math.max(num(c[s]), got.length);
			total += counts[s];
			if (got.length < counts[s])
				cut.push("the newest " + got.length + " of " + counts[s] + " " + s);
			list = list.concat(got);
		});
		list.sort(function (x, y) {
			return sevRank(x.severity) - sevRank(y.severity) ||
			       (isInt(y.opened_at) ? y.opened_at : 0) - (isInt(x.opened_at) ? x.opened_at : 0);
		});
		SEVERITIES.forEach(function (s) {
			$("count-" + s).textContent = String(counts[s]);
			$("count-" + s).parentNode.classList.toggle("zero", counts[s] === 0);
		});
		$("active-count").textContent = "(" + total + ")";
		$("active-truncated").textContent = cut.length ?
			"Showing " + cut.join(", ") + " active alerts." : "";
		$("active-truncated").hidden = cut.length === 0;
		st.counts = {critical: counts.critical, total: total};
		showTitle();
		announceCritical(list.filter(function (a) {
			return a.severity === "critical";
		}));
		fillAlerts("active-alerts", list, seq, false);
	}

	/*
	 * Says a new critical alert in the live region (aria-live assertive), for
	 * those who do not watch the screen or cannot see its colours. Not for
	 * the ones there when the page opened: those the table shows.
	 */
	function announceCritical(crit) {
		var ids = new Set(crit.map(function (a) {
			return a.id;
		}));
		var fresh = st.critSeen === null ? [] : crit.filter(function (a) {
			return !st.critSeen.has(a.id);
		});
		st.critSeen = ids;
		if (!fresh.length)
			return;
		$("announce").textContent = (fresh.length === 1 ? "New critical alert: " :
					     fresh.length + " new critical alerts: ") +
			fresh.slice(0, 3).map(function (a) {
				return str(a.rule) + " at " + where(a);
			}).join("; ") + (fresh.length > 3 ? "; …" : "") + ".";
	}

	/*
	 * "Recently cleared": of clearedAlerts()'s answers (all good), the
	 * CLEARED_SHOWN latest cleared, and every unacknowledged critical one
	 * besides (it must not drop off the screen unacknowledged); latest
	 * cleared first.
	 */
	function renderCleared(res, seq) {
		var byId = new Map();
		res.forEach(function (r) {
			r.body.forEach(function (a) {
				if (isObject(a) && isInt(a.id))
					byId.set(a.id, a);
			});
		});
		var all = Array.from(byId.values());
		all.sort(function (x, y) {
			return num(y.cleared_at) - num(x.cleared_at) || y.id - x.id;
		});
		var list = all.filter(function (a, i) {
			return i < CLEARED_SHOWN || (a.severity === "critical" && unacked(a));
		});
		fillAlerts("cleared-alerts", list, seq, true);
	}

	function num(v) {
		return isInt(v) ? v : 0;
	}

	function renderSites(body) {
		var list = Array.isArray(body) ? body.filter(function (s) {
			return s && typeof s === "object" && typeof s.site === "string";
		}) : [];
		/* what needs attention first: alerts, then devices offline */
		list.sort(function (x, y) {
			return num(y.active_alerts) - num(x.active_alerts) ||
			       (num(y.devices) - num(y.online)) - (num(x.devices) - num(x.online)) ||
			       x.site.localeCompare(y.site, undefined, {numeric: true});
		});
		var sig = JSON.stringify([st.site, list]);
		fillTable("sites", sig, list.length ? list.map(function (s) {
			var offline = num(s.devices) - num(s.online);
			return h("tr", {class: (s.site === st.site ? "selected" : "") +
					      (num(s.active_alerts) ? " has-alerts" : "")},
				 h("td", null, h("button", {type: "button", class: "link site", text: s.site,
							   title: "show the devices of " + s.site,
							   onclick: function () {
								   selectSite(s.site);
							   }})),
				 h("td", {class: "num", text: num(s.devices)}),
				 h("td", {class: "num", text: num(s.online)}),
				 h("td", {class: "num" + (offline > 0 ? " offline" : ""), text: offline}),
				 h("td", {class: "num" + (num(s.active_alerts) ? " alerting" : ""),
					  text: num(s.active_alerts)}));
		}) : [emptyRow(5, "No sites yet.")]);
	}

	function selectSite(site) {
		if (site !== null && !ID_RE.test(site))
			site = null;
		st.site = site;
		storageSet(SITE_KEY, site);
		st.sigs["sites"] = null;
		st.sigs["devices"] = null;
		$("devices-section").hidden = site === null;
		$("devices-site").textContent = site || "";
		if (site !== null)
			fillTable("devices", "loading", [emptyRow(6, "Loading…")]);
		refreshSoon();
	}

	function fmtW(w) {
		if (typeof w !== "number" || !isFinite(w))
			return null;
		return w >= 10000 ? (w / 1000).toFixed(1) + " kW" : Math.round(w) + " W";
	}

	function liftSummary(r) {
		var p = [];
		if (isInt(r.floor))
			p.push("floor " + r.floor);
		if (r.dir)
			p.push(r.dir === "up" ? "going up" : r.dir === "down" ? "going down" : "stopped");
		if (r.door)
			p.push("door " + str(r.door));
		if (r.mode)
			p.push(str(r.mode) === "normal" ? "normal" : "mode " + str(r.mode));
		if (r.occupied === true)
			p.push("occupied");
		if (r.power === "battery")
			p.push("on battery");
		if (r.safety_ok === false)
			p.push("safety circuit open");
		return p.join(" · ");
	}

	/*
	 * One line for a charger from its newest station record and each port's
	 * newest record; null when recs hold neither.
	 */
	function chargerSummary(dev, recs) {
		var station = null;
		var ports = new Map();
		recs.forEach(function (r) { /* newest first: keep the first of each */
			if (!r || typeof r !== "object")
				return;
			if (r.t === "station" && station === null)
				station = r;
			else if (r.t === "port" && isInt(r.port) && !ports.has(r.port))
				ports.set(r.port, r);
		});
		if (station === null && ports.size === 0)
			return null;
		var p = [];
		if (station) {
			var w = fmtW(station.power_w);
			if (w)
				p.push(w);
			if (station.smoke === true)
				p.push("SMOKE");
			if (station.door_open === true)
				p.push("cabinet open");
		}
		var n = dev.info && isInt(dev.info.ports) ? dev.info.ports : ports.size;
		var counts = new Map();
		var flagged = {fault: [], disabled: []};
		ports.forEach(function (r, port) {
			var s = str(r.state);
			counts.set(s, (counts.get(s) || 0) + 1);
			if (flagged[s])
				flagged[s].push(port);
		});
		if (n > 0) {
			var parts = [];
			["charging", "plugged", "full", "idle", "fault", "disabled"].forEach(function (s) {
				if (counts.get(s))
					parts.push(counts.get(s) + " " + s);
			});
			if (ports.size < n)
				parts.push((n - ports.size) + " unknown");
			p.push(n + " ports: " + parts.join(", "));
		}
		["fault", "disabled"].forEach(function (s) {
			if (flagged[s].length)
				p.push(s + " on port " + flagged[s].sort(function (a, b) {
					return a - b;
				}).join(", "));
		});
		return p.join(" · ");
	}

	/* One line for the newest record of any kind (when nothing better is known). */
	function recordSummary(r) {
		switch (r.t) {
		case "lift":
			return liftSummary(r);
		case "station":
			return ["station", fmtW(r.power_w), r.smoke === true ? "SMOKE" : null].filter(Boolean).join(" · ");
		case "port":
			return ["port " + str(r.port), str(r.state), fmtW(r.w)].filter(Boolean).join(" · ");
		case "session":
			return "session on port " + str(r.port) + " ended (" + str(r.reason) + ")";
		case "fault":
			return "fault " + str(r.code) + (r.active === true ? " raised" : " cleared") +
			       (isInt(r.port) ? " on port " + r.port : "") + (r.detail ? ": " + str(r.detail) : "");
		default:
			return str(r.t);
		}
	}

	function deviceSummary(d, recs) {
		var line = d.kind === "charger" && recs ? chargerSummary(d, recs) : null;
		if (line !== null)
			return line;
		var r = d.latest;
		if (!r || typeof r !== "object")
			return "no reading yet";
		return recordSummary(r);
	}

	function renderDevices(site, res) {
		var r = res.devices;
		if (r.status !== 200) {
			fillTable("devices", "error", [emptyRow(6, "Cannot list the devices: " + errorText(r))]);
			return;
		}
		var list = Array.isArray(r.body) ? r.body.filter(function (d) {
			return d && typeof d === "object";
		}) : [];
		list.sort(function (x, y) {
			return str(x.dev).localeCompare(str(y.dev), undefined, {numeric: true});
		});
		var rows = list.map(function (d) {
			var online = d.online === true;
			return {d: d, online: online, summary: deviceSummary(d, res.readings.get(d.dev))};
		});
		var sig = JSON.stringify([site, zoneOf(site), todayIn(zoneOf(site)), rows.map(function (x) {
			return [x.d.dev, x.d.kind, x.online, x.d.last_seen, x.summary, x.d.active_alerts];
		})]);
		fillTable("devices", sig, rows.length ? rows.map(function (x) {
			var d = x.d;
			return h("tr", {class: (x.online ? "" : "is-offline") + (num(d.active_alerts) ? " has-alerts" : "")},
				 h("td", {class: "c-dev", text: str(d.dev)}),
				 h("td", {class: "c-kind", text: str(d.kind)}),
				 h("td", {class: "c-online"},
				   h("span", {class: "dot " + (x.online ? "dot-on" : "dot-off")}),
				   x.online ? "online" : "offline"),
				 timeCell(d.last_seen, "c-seen", zoneOf(site)),
				 h("td", {class: "c-latest", text: x.summary}),
				 h("td", {class: "num" + (num(d.active_alerts) ? " alerting" : ""),
					  text: num(d.active_alerts)}));
		}) : [emptyRow(6, "No devices at this site.")]);
	}

	/* ------------------------------------------------------------ acknowledging */

	/* a: the alert as its row showed it when clicked. */
	function onAckClick(a) {
		if (!st.name) {
			st.pendingAck = a;
			openNameDialog();
			return;
		}
		acknowledge(a);
	}

	function setAckBusy(id, busy) {
		var list = document.querySelectorAll("button.ack");
		for (var i = 0; i < list.length; i++)
			if (list[i].getAttribute("data-alert-id") === String(id)) {
				list[i].disabled = busy;
				list[i].textContent = busy ? "Acknowledging…" : "Acknowledge";
			}
	}

	/* "lift.trapped at hp-1 / lift-1 (alert 12)": what an operator recognises. */
	function describe(a) {
		return str(a.rule) + " at " + where(a) + " (alert " + a.id + ")";
	}

	/*
	 * An acknowledgement answered (alert: the 200's, or null for a 409): its
	 * rows are drawn again at once, in place (no other row moves), without
	 * the button, and lists of refreshes started before now cannot bring the
	 * unacknowledged state back (overlay).
	 */
	function markAcked(a, alert) {
		var now = Date.now();
		st.acked.forEach(function (e, k) {
			if (e.until < now)
				st.acked.delete(k);
		});
		var e = {alert: alert, seq: st.seq, until: now + ACK_KEEP_MS};
		st.acked.set(a.id, e);
		["active-alerts", "cleared-alerts"].forEach(function (t) {
			Array.from($(t).tBodies[0].rows).forEach(function (tr) {
				if (tr.getAttribute("data-alert-id") !== String(a.id))
					return;
				var nu = alertRow(overlay(a, e.seq), t === "cleared-alerts");
				var had = tr.contains(document.activeElement);
				tr.replaceWith(nu);
				if (had) { /* the keyboard stays on the row, not thrown back to the top */
					nu.tabIndex = -1;
					nu.focus();
				}
			});
			st.sigs[t] = null; /* the next refresh draws its own list (unless paused) */
		});
	}

	function acknowledge(a) {
		var id = a.id;
		if (st.acking.has(id) || !st.token)
			return;
		st.acking.add(id);
		setAckBusy(id, true);
		var gen = st.gen;
		var done = false; /* acknowledged: its button stays away */
		request("POST", "api/v1/alerts/" + id + "/ack", {by: st.name}, true).then(function (r) {
			if (gen !== st.gen)
				return;
			var body = r.status === 200 && isObject(r.body) && r.body.id === id &&
				   typeof r.body.state === "string" ? r.body : null;
			if (body) {
				done = true;
				st.acking.delete(id);
				markAcked(a, body);
				showNotice("Acknowledged " + describe(body) + " as " + st.name + ".", false);
			} else if (r.status === 200) {
				showNotice("The collector's answer to acknowledging " + describe(a) + " is not " +
					   "readable: whether it was acknowledged is not known — refreshing.", true);
			} else if (r.status === 409) {
				done = true;
				st.acking.delete(id);
				markAcked(a, null);
				showNotice(describe(a) + " was already acknowledged (" + errorText(r) + ").", false);
			} else if (r.status === 401)
				askToken("The collector refused the token (401). Enter a valid token.");
			else if (r.status === 403) {
				showNotice("Could not acknowledge " + describe(a) + ": this is a viewer token " +
					   "(read only); acknowledging needs an operator token.", true);
				setRole("viewer");
			} else
				showNotice("Could not acknowledge " + describe(a) + " (" + r.status + "): " +
					   errorText(r), true);
		}, function (e) {
			if (gen !== st.gen)
				return;
			/* the request may have reached the collector and been committed: do not guess */
			var why = e && e.cause ? e.cause : {};
			showNotice("No answer from the collector " + (why.name === "AbortError" ?
				   "in " + FETCH_TIMEOUT_MS / 1000 + " s " : "") + "to acknowledging " +
				   describe(a) + ": whether it was acknowledged is not known — refreshing to " +
				   "see.", true);
		}).finally(function () {
			st.acking.delete(id);
			if (!done)
				setAckBusy(id, false);
			refreshSoon();
		});
	}

	/* ------------------------------------------------------------ start */

	function start() {
		$("login-form").addEventListener("submit", function (ev) {
			ev.preventDefault(); /* never a form submission (CSP form-action 'none') */
			useToken($("token-input").value);
		});
		$("name-form").addEventListener("submit", onNameSubmit);
		$("name-cancel").addEventListener("click", function () {
			$("name-dialog").close();
		});
		$("name-dialog").addEventListener("close", function () {
			st.pendingAck = null; /* cancelled (button or Escape): no acknowledgement */
		});
		$("set-name").addEventListener("click", openNameDialog);
		$("sign-out").addEventListener("click", function () {
			askToken("Signed out. Enter a token to continue.");
		});
		$("notice-close").addEventListener("click", function () {
			$("notice").hidden = true;
		});
		$("devices-close").addEventListener("click", function () {
			selectSite(null);
		});
		window.addEventListener("online", function () {
			st.nextTry = 0; /* the browser's network is back: no need to wait out the backoff */
			refreshSoon();
		});
		/* a background tab's timer runs about once a minute: catch up when it is seen again */
		document.addEventListener("visibilitychange", function () {
			if (document.visibilityState !== "visible")
				return;
			st.nextTry = 0;
			todays.clear();
			updateAges();
			refreshSoon();
		});
		["active-alerts", "cleared-alerts"].forEach(function (id) {
			var t = $(id);
			["pointermove", "pointerdown"].forEach(function (ev) {
				t.addEventListener(ev, function () {
					st.pointerAt[id] = Date.now();
				});
			});
			t.addEventListener("pointerleave", function () {
				st.pointerAt[id] = 0;
				resume(id);
			});
			t.addEventListener("focusout", function () {
				setTimeout(function () { /* the focus has moved on by then */
					resume(id);
				}, 0);
			});
		});
		window.addEventListener("hashchange", function () {
			var t = tokenFromFragment();
			if (t !== null)
				useToken(t);
		});

		st.name = storageGet(NAME_KEY);
		showName();
		var site = storageGet(SITE_KEY);
		if (site && ID_RE.test(site)) {
			st.site = site;
			$("devices-section").hidden = false;
			$("devices-site").textContent = site;
		}
		setInterval(function () {
			todays.clear(); /* the day may have changed: rows drawn as "today" are drawn again */
			updateAges();
			resume("active-alerts"); /* a pointer that rested long enough no longer holds it */
			resume("cleared-alerts");
			refresh(); /* skipped while the previous one is still out */
		}, REFRESH_MS);
		var t = tokenFromFragment();
		if (t === null)
			t = storageGet(TOKEN_KEY);
		if (t !== null)
			useToken(t);
		else
			askToken(null);
	}

	start();
})();
