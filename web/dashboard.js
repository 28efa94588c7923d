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
		pendingAck: null,  /* alert id to acknowledge once the name is given */
		sigs: {},          /* table id -> signature of what it shows */
		zones: new Map()   /* site -> its IANA time zone, from /api/v1/sites */
	};
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
	 * ISO 8601 in the site's zone with its offset: "14:03:05+08:00" when it
	 * is today there, else "2026-11-28T14:03:05+08:00".
	 */
	function fmtTime(ts, zone) {
		if (!isInt(ts))
			return "–";
		var z = zoned(ts, zone);
		if (z.date === zoned(Date.now(), zone).date)
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

	/* The error text of an API answer: its {"error": "..."} or the status. */
	function errorText(r) {
		if (r.body && typeof r.body === "object" && typeof r.body.error === "string")
			return r.body.error;
		return "HTTP " + r.status;
	}

	/* ------------------------------------------------------------ banner, notice */

	function showBanner(text) {
		$("banner").textContent = text;
		$("banner").hidden = false;
		$("main").classList.add("stale");
	}

	function hideBanner() {
		$("banner").hidden = true;
		$("main").classList.remove("stale");
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
		hideBanner();
		st.sigs = {};
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
		st.sigs = {};
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
		var id = st.pendingAck;
		st.pendingAck = null;
		st.name = v;
		storageSet(NAME_KEY, v);
		showName();
		$("name-dialog").close();
		if (id !== null)
			acknowledge(id);
	}

	/* ------------------------------------------------------------ HTTP */

	/*
	 * One request: resolves to {status, body, path} (body the parsed JSON or
	 * null); rejects with {unreachable: true} on a network error or after
	 * FETCH_TIMEOUT_MS.
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
				var body = null;
				try {
					body = text ? JSON.parse(text) : null;
				} catch (e) {
					body = null;
				}
				return {status: res.status, body: body, path: path};
			});
		}).catch(function (e) { /* fetch() or reading the body: the network */
			throw {unreachable: true, cause: e};
		}).finally(function () {
			clearTimeout(timer);
		});
	}

	function apiGet(path) {
		return request("GET", path, undefined, true);
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
		if (st.role === null)
			learnRole(gen);
		var health = request("GET", "healthz", undefined, false);
		var calls = [
			activeAlerts(),
			apiGet("api/v1/sites"),
			apiGet("api/v1/alerts?state=cleared&limit=20"),
			site ? devicesWithReadings(site) : Promise.resolve(null)
		];
		Promise.all([health.catch(function () {
			return null;
		})].concat(calls)).then(function (r) {
			if (gen !== st.gen)
				return; /* the token changed meanwhile */
			renderHealth(r[0]);
			var answers = r[1].answers.concat(r.slice(2, 4), r[4] ? [r[4].devices] : []);
			if (answers.some(function (x) {
				return x.status === 401;
			})) {
				askToken("The collector refused the token (401). Enter a valid token.");
				return;
			}
			var failed = answers.filter(function (x) {
				return x.status !== 200;
			});
			if (r[2].status === 200)
				takeZones(r[2].body); /* first: every time below is shown in its site's zone */
			if (r[1].answers.every(function (x) {
				return x.status === 200;
			}))
				renderActive(r[1]);
			if (r[2].status === 200)
				renderSites(r[2].body);
			if (r[3].status === 200)
				renderCleared(r[3].body);
			if (r[4] && site === st.site)
				renderDevices(site, r[4]);
			if (failed.length) {
				showBanner("collector error: " + failed.map(function (x) {
					return x.path.split("?")[0] + ": " + errorText(x);
				}).join("; ") + " — retrying every " + REFRESH_MS / 1000 + " s");
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
		if (document.title.indexOf("(disconnected) ") !== 0) /* the counts, kept, are old */
			document.title = "(disconnected) " + document.title;
		var why = e && e.cause ? e.cause : {};
		showBanner("collector unreachable" + (why.name === "AbortError" ?
			   " (no answer in " + FETCH_TIMEOUT_MS / 1000 + " s)" : why.name === "ProxyError" ?
			   " (the proxy answers " + why.status + ")" : "") +
			   " — next try in " + Math.round(wait / 1000) + " s" +
			   (st.lastOk ? " (last update " + fmtTime(st.lastOk, pageZone()) + ")" : ""));
	}

	/*
	 * The active alerts, so that the most severe can never be cut off by
	 * newer ones: the counts per severity (never cut), then for each severity
	 * that has any its own list of the ACTIVE_LIMIT newest. Resolves to
	 * {counts: answer, lists: {severity: answer}, answers: all answers}.
	 */
	function activeAlerts() {
		return apiGet("api/v1/alerts/counts").then(function (counts) {
			var out = {counts: counts, lists: {}, answers: [counts]};
			var c = counts.status === 200 && counts.body ? counts.body.active : null;
			if (!c || typeof c !== "object")
				return out;
			return Promise.all(SEVERITIES.filter(function (s) {
				return num(c[s]) > 0;
			}).map(function (s) {
				return apiGet("api/v1/alerts?state=active&severity=" + s + "&limit=" +
					      ACTIVE_LIMIT).then(function (r) {
					out.lists[s] = r;
					out.answers.push(r);
				});
			})).then(function () {
				return out;
			});
		});
	}

	/*
	 * The site's devices, each charger with its current state (current=1,
	 * our extension: its newest station record and each port's newest of
	 * the last 2 minutes), in one request however many chargers there are.
	 * Resolves to {devices: answer, readings: Map dev -> records}.
	 */
	function devicesWithReadings(site) {
		return apiGet("api/v1/devices?site=" + encodeURIComponent(site) + "&current=1").then(
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

	function emptyRow(cols, text) {
		return h("tr", {class: "empty"}, h("td", {colspan: cols, text: text}));
	}

	function renderHealth(r) {
		var pill = $("health");
		var cls = "pill-bad";
		var text;
		if (r === null) {
			text = "collector unreachable";
		} else if (r.status === 200) {
			cls = "pill-ok";
			text = "collector ok";
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
				    text: busy ? "Acknowledging…" : "Acknowledge",
				    onclick: function () {
					    onAckClick(a.id);
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

	function alertsSig(list) {
		return JSON.stringify(list.map(function (a) {
			return [a.id, a.state, a.acked_by, a.acked_at, a.cleared_at, a.detail, a.severity,
				st.acking.has(a.id), zoneOf(str(a.site))];
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

	/* res: activeAlerts()'s answers, all 200. */
	function renderActive(res) {
		var counts = {}, total = 0, cut = [], list = [];
		var c = res.counts.body && typeof res.counts.body.active === "object" ?
			res.counts.body.active : {};
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
		document.title = (counts.critical ? "(" + counts.critical + " critical) " :
				  total ? "(" + total + ") " : "") + "sitepulse";
		fillTable("active-alerts", alertsSig(list),
			  list.length ? list.map(function (a) {
				  return alertRow(a, false);
			  }) : [emptyRow(7, "No active alerts.")]);
	}

	/* The API's 20 newest opened of the cleared alerts, the latest cleared first. */
	function renderCleared(body) {
		var list = Array.isArray(body) ? body.filter(function (a) {
			return a && typeof a === "object";
		}) : [];
		list.sort(function (x, y) {
			return (isInt(y.cleared_at) ? y.cleared_at : 0) - (isInt(x.cleared_at) ? x.cleared_at : 0);
		});
		fillTable("cleared-alerts", alertsSig(list),
			  list.length ? list.map(function (a) {
				  return alertRow(a, true);
			  }) : [emptyRow(8, "No cleared alerts.")]);
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
		var sig = JSON.stringify([site, zoneOf(site), rows.map(function (x) {
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

	function onAckClick(id) {
		if (!st.name) {
			st.pendingAck = id;
			openNameDialog();
			return;
		}
		acknowledge(id);
	}

	function setAckBusy(id, busy) {
		var list = document.querySelectorAll("button.ack");
		for (var i = 0; i < list.length; i++)
			if (list[i].getAttribute("data-alert-id") === String(id)) {
				list[i].disabled = busy;
				list[i].textContent = busy ? "Acknowledging…" : "Acknowledge";
			}
	}

	function acknowledge(id) {
		if (st.acking.has(id) || !st.token)
			return;
		st.acking.add(id);
		setAckBusy(id, true);
		var gen = st.gen;
		request("POST", "api/v1/alerts/" + id + "/ack", {by: st.name}, true).then(function (r) {
			if (gen !== st.gen)
				return;
			if (r.status === 200)
				showNotice("Alert " + id + " acknowledged by " + st.name + ".", false);
			else if (r.status === 401)
				askToken("The collector refused the token (401). Enter a valid token.");
			else if (r.status === 403) {
				showNotice("Could not acknowledge alert " + id + ": this is a viewer token " +
					   "(read only); acknowledging needs an operator token.", true);
				setRole("viewer");
			} else
				showNotice("Could not acknowledge alert " + id + " (" + r.status + "): " +
					   errorText(r), true);
		}, function () {
			showNotice("Could not acknowledge alert " + id + ": collector unreachable.", true);
		}).finally(function () {
			st.acking.delete(id);
			setAckBusy(id, false);
			st.sigs["active-alerts"] = null;
			st.sigs["cleared-alerts"] = null;
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
			updateAges();
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
