/*
 * yaml.c: require "cork.yaml": libyaml load and dump.
 *
 *   yaml.decode(text[, {filename=, positions=true}]) -> value[, positions]
 *   yaml.encode(value) -> text
 *   yaml.sequence(t) -> t marked to encode as a sequence even when empty
 *   yaml.null  (the same lightuserdata as cork.json.null)
 *
 * The YAML 1.2 core schema: null/~/empty, true/false, decimal/0x/0o ints,
 * floats, .inf/.nan; quoted or !!str scalars stay strings.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "runtime.h"
#include "modules.h"

#define MAX_DEPTH 256
#define SEQ_MARK "cork.yaml.sequence"

/* ---- decode ---------------------------------------------------------- */

struct parser_box {
	yaml_parser_t parser;
	yaml_event_t event;
	int have_parser, have_event;
};

static int parser_gc(lua_State *L)
{
	struct parser_box *b = lua_touserdata(L, 1);
	if (b->have_event)
		yaml_event_delete(&b->event);
	if (b->have_parser)
		yaml_parser_delete(&b->parser);
	b->have_event = b->have_parser = 0;
	return 0;
}

struct dec {
	lua_State *L;
	struct parser_box *box;
	const char *filename;
	int anchors;     /* stack index: anchor name -> value */
	int positions;   /* stack index: table -> { [0] = pos, key = pos } or 0 */
};

static int dec_fail(struct dec *d, const yaml_mark_t *mark, const char *problem, const char *context)
{
	lua_State *L = d->L;
	cork_error_push(L, "yaml", "%s:%d:%d: %s%s%s", d->filename, (int)mark->line + 1,
	                (int)mark->column + 1, problem ? problem : "invalid YAML",
	                context ? " " : "", context ? context : "");
	lua_pushstring(L, d->filename);
	lua_setfield(L, -2, "file");
	lua_pushinteger(L, (lua_Integer)mark->line + 1);
	lua_setfield(L, -2, "line");
	lua_pushinteger(L, (lua_Integer)mark->column + 1);
	lua_setfield(L, -2, "col");
	return lua_error(L);
}

static void next_event(struct dec *d)
{
	struct parser_box *b = d->box;
	if (b->have_event) {
		yaml_event_delete(&b->event);
		b->have_event = 0;
	}
	if (!yaml_parser_parse(&b->parser, &b->event)) {
		yaml_mark_t m = b->parser.problem_mark;
		if (b->parser.problem == NULL)
			m = b->parser.mark;
		dec_fail(d, &m, b->parser.problem, b->parser.context);
	}
	b->have_event = 1;
}

static int is_null_word(const char *s, size_t n)
{
	return n == 0 || (n == 1 && s[0] == '~') ||
	       (n == 4 && (!strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL")));
}

/* Push the value of a plain scalar under the core schema. */
static void resolve_plain(lua_State *L, const char *s, size_t n)
{
	char *end;
	if (is_null_word(s, n)) {
		lua_pushlightuserdata(L, NULL);
		return;
	}
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
		lua_pushboolean(L, 1);
		return;
	}
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
		lua_pushboolean(L, 0);
		return;
	}
	if (strlen(s) == n) {
		const char *p = s;
		int base = 10;
		if (*p == '-' || *p == '+')
			p++;
		if (p[0] == '0' && p[1] == 'x') { base = 16; p += 2; }
		else if (p[0] == '0' && p[1] == 'o') { base = 8; p += 2; }
		if (*p && strspn(p, base == 16 ? "0123456789abcdefABCDEF" : base == 8 ? "01234567" : "0123456789") == strlen(p)) {
			long long v;
			errno = 0;
			v = strtoll(p, &end, base);
			if (errno == 0 && *end == 0) {
				lua_pushinteger(L, (lua_Integer)(s[0] == '-' ? -v : v));
				return;
			}
		}
		p = s;
		if (*p == '-' || *p == '+')
			p++;
		if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF")) {
			lua_pushnumber(L, s[0] == '-' ? -HUGE_VAL : HUGE_VAL);
			return;
		}
		if (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN")) {
			lua_pushnumber(L, NAN);
			return;
		}
		/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
		{
			const char *q = p;
			size_t digits = strspn(q, "0123456789");
			int ok = 0;
			q += digits;
			if (*q == '.') {
				size_t frac = strspn(q + 1, "0123456789");
				ok = digits > 0 || frac > 0;
				q += 1 + frac;
			} else {
				ok = digits > 0;
			}
			if (ok && (*q == 'e' || *q == 'E')) {
				q++;
				if (*q == '-' || *q == '+')
					q++;
				size_t ed = strspn(q, "0123456789");
				ok = ed > 0;
				q += ed;
			}
			if (ok && *q == 0 && (strchr(s, '.') || strchr(s, 'e') || strchr(s, 'E'))) {
				lua_pushnumber(L, strtod(s, NULL));
				return;
			}
		}
	}
	lua_pushlstring(L, s, n);
}

static void record_pos(struct dec *d, int tbl, const yaml_mark_t *m, int keyidx)
{
	lua_State *L = d->L;
	if (!d->positions)
		return;
	lua_pushvalue(L, tbl);
	if (lua_rawget(L, d->positions) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, tbl);
		lua_pushvalue(L, -2);
		lua_rawset(L, d->positions);
	}
	lua_createtable(L, 0, 2);
	lua_pushinteger(L, (lua_Integer)m->line + 1);
	lua_setfield(L, -2, "line");
	lua_pushinteger(L, (lua_Integer)m->column + 1);
	lua_setfield(L, -2, "col");
	if (keyidx)
		lua_pushvalue(L, keyidx);
	else
		lua_pushinteger(L, 0);
	lua_insert(L, -2);
	lua_rawset(L, -3);
	lua_pop(L, 1);
}

static void save_anchor(struct dec *d, const yaml_char_t *anchor)
{
	if (!anchor)
		return;
	lua_pushstring(d->L, (const char *)anchor);
	lua_pushvalue(d->L, -2);
	lua_rawset(d->L, d->anchors);
}

/* Parse the node whose first event is current; push its value. */
static void parse_node(struct dec *d, int depth)
{
	lua_State *L = d->L;
	yaml_event_t *ev = &d->box->event;
	luaL_checkstack(L, 8, "yaml nesting");
	if (depth > MAX_DEPTH)
		dec_fail(d, &ev->start_mark, "too deeply nested", NULL);
	switch (ev->type) {
	case YAML_SCALAR_EVENT: {
		const char *v = (const char *)ev->data.scalar.value;
		size_t n = ev->data.scalar.length;
		const char *tag = (const char *)ev->data.scalar.tag;
		if (tag && strcmp(tag, YAML_STR_TAG) == 0)
			lua_pushlstring(L, v, n);
		else if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE || (tag && strcmp(tag, "!") != 0 && !ev->data.scalar.quoted_implicit))
			resolve_plain(L, v, n);
		else
			lua_pushlstring(L, v, n);
		save_anchor(d, ev->data.scalar.anchor);
		break;
	}
	case YAML_ALIAS_EVENT:
		lua_pushstring(L, (const char *)ev->data.alias.anchor);
		if (lua_rawget(L, d->anchors) == LUA_TNIL)
			dec_fail(d, &ev->start_mark, "unknown alias", (const char *)ev->data.alias.anchor);
		break;
	case YAML_SEQUENCE_START_EVENT: {
		lua_Integer i = 0;
		int t;
		yaml_mark_t start = ev->start_mark;
		lua_newtable(L);
		t = lua_gettop(L);
		save_anchor(d, ev->data.sequence_start.anchor);
		record_pos(d, t, &start, 0);
		for (;;) {
			next_event(d);
			if (ev->type == YAML_SEQUENCE_END_EVENT)
				break;
			yaml_mark_t m = ev->start_mark;
			parse_node(d, depth + 1);
			lua_rawseti(L, t, ++i);
			if (d->positions) {
				lua_pushinteger(L, i);
				record_pos(d, t, &m, lua_gettop(L));
				lua_pop(L, 1);
			}
		}
		break;
	}
	case YAML_MAPPING_START_EVENT: {
		int t;
		yaml_mark_t start = ev->start_mark;
		lua_newtable(L);
		t = lua_gettop(L);
		save_anchor(d, ev->data.mapping_start.anchor);
		record_pos(d, t, &start, 0);
		for (;;) {
			yaml_mark_t km;
			next_event(d);
			if (ev->type == YAML_MAPPING_END_EVENT)
				break;
			km = ev->start_mark;
			parse_node(d, depth + 1);          /* key */
			if (lua_type(L, -1) == LUA_TTABLE || lua_type(L, -1) == LUA_TLIGHTUSERDATA ||
			    (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) != lua_tonumber(L, -1)))
				dec_fail(d, &km, "unsupported mapping key (use a plain string)", NULL);
			lua_pushvalue(L, -1);
			if (lua_rawget(L, t) != LUA_TNIL)
				dec_fail(d, &km, "duplicate key", lua_tostring(L, -2));
			lua_pop(L, 1);
			next_event(d);
			parse_node(d, depth + 1);          /* value */
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, t);
			record_pos(d, t, &km, lua_gettop(L));
			lua_pop(L, 1);
		}
		break;
	}
	default:
		dec_fail(d, &ev->start_mark, "unexpected YAML event", NULL);
	}
}

static int yaml_decode(lua_State *L)
{
	static const char *const opts[] = { "filename", "positions", NULL };
	size_t len;
	const char *text = luaL_checklstring(L, 1, &len);
	struct dec d;
	int want_pos = 0;
	cork_check_options(L, 2, opts);
	memset(&d, 0, sizeof d);
	d.L = L;
	d.filename = "<string>";
	d.filename = cork_opt_string(L, 2, "filename", "<string>");
	want_pos = cork_opt_boolean(L, 2, "positions", 0);
	lua_settop(L, 2);
	d.box = lua_newuserdatauv(L, sizeof *d.box, 0);      /* 3 */
	memset(d.box, 0, sizeof *d.box);
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, parser_gc);
	lua_setfield(L, -2, "__gc");
	lua_setmetatable(L, 3);
	lua_newtable(L);                                     /* 4: anchors */
	d.anchors = 4;
	if (want_pos) {
		lua_newtable(L);                                 /* 5: positions */
		lua_createtable(L, 0, 1);
		lua_pushliteral(L, "k");
		lua_setfield(L, -2, "__mode");
		lua_setmetatable(L, -2);
		d.positions = 5;
	} else {
		lua_pushnil(L);
	}
	if (!yaml_parser_initialize(&d.box->parser))
		return luaL_error(L, "out of memory");
	d.box->have_parser = 1;
	yaml_parser_set_input_string(&d.box->parser, (const unsigned char *)text, len);
	next_event(&d);                 /* STREAM-START */
	next_event(&d);
	if (d.box->event.type == YAML_STREAM_END_EVENT) {
		lua_pushlightuserdata(L, NULL);
	} else {
		next_event(&d);             /* first event of the root node */
		parse_node(&d, 0);
		next_event(&d);             /* DOCUMENT-END */
		next_event(&d);
		if (d.box->event.type != YAML_STREAM_END_EVENT)
			dec_fail(&d, &d.box->event.start_mark, "more than one document in stream", NULL);
	}
	/* free the parser now rather than at the next GC cycle */
	lua_pushcfunction(L, parser_gc);
	lua_pushvalue(L, 3);
	lua_call(L, 1, 0);
	if (want_pos) {
		lua_pushvalue(L, 5);
		return 2;
	}
	return 1;
}

/* ---- encode ---------------------------------------------------------- */

struct emit_box {
	yaml_emitter_t emitter;
	yaml_event_t event;
	int have_emitter;
	char *buf;
	size_t len, cap;
};

static int emit_gc(lua_State *L)
{
	struct emit_box *b = lua_touserdata(L, 1);
	if (b->have_emitter)
		yaml_emitter_delete(&b->emitter);
	b->have_emitter = 0;
	free(b->buf);
	b->buf = NULL;
	return 0;
}

static int emit_write(void *data, unsigned char *p, size_t n)
{
	struct emit_box *b = data;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		char *nb;
		while (cap < b->len + n)
			cap *= 2;
		nb = realloc(b->buf, cap);
		if (!nb)
			return 0;
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, p, n);
	b->len += n;
	return 1;
}

static void emit(lua_State *L, struct emit_box *b)
{
	if (!yaml_emitter_emit(&b->emitter, &b->event))
		luaL_error(L, "yaml.encode: %s", b->emitter.problem ? b->emitter.problem : "emitter error");
}

static void emit_scalar(lua_State *L, struct emit_box *b, const char *s, size_t n, yaml_scalar_style_t style)
{
	yaml_scalar_event_initialize(&b->event, NULL, (yaml_char_t *)YAML_STR_TAG,
	                             (yaml_char_t *)s, (int)n, 1, 1, style);
	emit(L, b);
}

static int is_sequence(lua_State *L, int idx, lua_Integer *len)
{
	lua_Integer n = 0, count = 0;
	if (lua_getmetatable(L, idx)) {
		int mark = lua_getfield(L, -1, "__yaml") == LUA_TSTRING && strcmp(lua_tostring(L, -1), "sequence") == 0;
		lua_pop(L, 2);
		if (mark) {
			*len = (lua_Integer)lua_rawlen(L, idx);
			return 1;
		}
	}
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		count++;
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
			lua_pop(L, 1);
			return 0;
		}
		if (lua_tointeger(L, -1) > n)
			n = lua_tointeger(L, -1);
	}
	*len = n;
	return count > 0 && n == count;
}

static int key_less(lua_State *L)
{
	/* numbers before strings; each ordered naturally */
	int ta = lua_type(L, 1), tb = lua_type(L, 2);
	if (ta != tb)
		lua_pushboolean(L, ta == LUA_TNUMBER);
	else
		lua_pushboolean(L, lua_compare(L, 1, 2, LUA_OPLT));
	return 1;
}

static void emit_value(lua_State *L, struct emit_box *b, int idx, int depth)
{
	char num[64];
	idx = lua_absindex(L, idx);
	luaL_checkstack(L, 8, "yaml.encode nesting");
	if (depth > MAX_DEPTH)
		luaL_error(L, "yaml.encode: nesting too deep (a cycle?)");
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		emit_scalar(L, b, "null", 4, YAML_PLAIN_SCALAR_STYLE);
		break;
	case LUA_TLIGHTUSERDATA:
		if (lua_touserdata(L, idx) != NULL)
			luaL_error(L, "yaml.encode: cannot encode a userdata");
		emit_scalar(L, b, "null", 4, YAML_PLAIN_SCALAR_STYLE);
		break;
	case LUA_TBOOLEAN:
		if (lua_toboolean(L, idx))
			emit_scalar(L, b, "true", 4, YAML_PLAIN_SCALAR_STYLE);
		else
			emit_scalar(L, b, "false", 5, YAML_PLAIN_SCALAR_STYLE);
		break;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx)) {
			snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, idx));
		} else {
			double v = lua_tonumber(L, idx);
			if (isnan(v))
				strcpy(num, ".nan");
			else if (isinf(v))
				strcpy(num, v < 0 ? "-.inf" : ".inf");
			else {
				snprintf(num, sizeof num, "%.17g", v);
				if (!strpbrk(num, ".eE"))
					strcat(num, ".0");
			}
		}
		emit_scalar(L, b, num, strlen(num), YAML_PLAIN_SCALAR_STYLE);
		break;
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;
		resolve_plain(L, s, n);
		if (lua_type(L, -1) != LUA_TSTRING)
			style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
		else if (memchr(s, '\n', n))
			style = YAML_LITERAL_SCALAR_STYLE;
		lua_pop(L, 1);
		emit_scalar(L, b, s, n, style);
		break;
	}
	case LUA_TTABLE: {
		lua_Integer n;
		if (is_sequence(L, idx, &n)) {
			yaml_sequence_start_event_initialize(&b->event, NULL, NULL, 1,
			                                     n ? YAML_BLOCK_SEQUENCE_STYLE : YAML_FLOW_SEQUENCE_STYLE);
			emit(L, b);
			for (lua_Integer i = 1; i <= n; i++) {
				lua_rawgeti(L, idx, i);
				emit_value(L, b, -1, depth + 1);
				lua_pop(L, 1);
			}
			yaml_sequence_end_event_initialize(&b->event);
			emit(L, b);
		} else {
			/* keys sorted (as strings) so the output is stable */
			lua_Integer nk = 0;
			lua_newtable(L);
			int keys = lua_gettop(L);
			lua_pushnil(L);
			while (lua_next(L, idx)) {
				lua_pop(L, 1);
				if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
					luaL_error(L, "yaml.encode: keys must be strings or numbers");
				lua_pushvalue(L, -1);
				lua_rawseti(L, keys, ++nk);
			}
			lua_getglobal(L, "table");
			lua_getfield(L, -1, "sort");
			lua_pushvalue(L, keys);
			lua_pushcfunction(L, key_less);
			lua_call(L, 2, 0);
			lua_pop(L, 1);
			yaml_mapping_start_event_initialize(&b->event, NULL, NULL, 1,
			                                    nk ? YAML_BLOCK_MAPPING_STYLE : YAML_FLOW_MAPPING_STYLE);
			emit(L, b);
			for (lua_Integer i = 1; i <= nk; i++) {
				lua_rawgeti(L, keys, i);
				emit_value(L, b, -1, depth + 1);
				lua_rawget(L, idx);
				emit_value(L, b, -1, depth + 1);
				lua_pop(L, 1);
			}
			yaml_mapping_end_event_initialize(&b->event);
			emit(L, b);
			lua_pop(L, 1);
		}
		break;
	}
	default:
		luaL_error(L, "yaml.encode: cannot encode a %s", luaL_typename(L, idx));
	}
}

static int yaml_encode(lua_State *L)
{
	struct emit_box *b;
	luaL_checkany(L, 1);
	lua_settop(L, 1);
	b = lua_newuserdatauv(L, sizeof *b, 0);
	memset(b, 0, sizeof *b);
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, emit_gc);
	lua_setfield(L, -2, "__gc");
	lua_setmetatable(L, -2);
	if (!yaml_emitter_initialize(&b->emitter))
		return luaL_error(L, "out of memory");
	b->have_emitter = 1;
	yaml_emitter_set_output(&b->emitter, emit_write, b);
	yaml_emitter_set_unicode(&b->emitter, 1);
	yaml_emitter_set_width(&b->emitter, 4096);
	yaml_stream_start_event_initialize(&b->event, YAML_UTF8_ENCODING);
	emit(L, b);
	yaml_document_start_event_initialize(&b->event, NULL, NULL, NULL, 1);
	emit(L, b);
	emit_value(L, b, 1, 0);
	yaml_document_end_event_initialize(&b->event, 1);
	emit(L, b);
	yaml_stream_end_event_initialize(&b->event);
	emit(L, b);
	lua_pushlstring(L, b->buf ? b->buf : "", b->len);
	return 1;
}

/* yaml.sequence(t): mark t to encode as a sequence, even when empty. */
static int yaml_sequence(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_getmetatable(L, SEQ_MARK);
	lua_setmetatable(L, 1);
	lua_settop(L, 1);
	return 1;
}

static const luaL_Reg yaml_funcs[] = {
	{"decode", yaml_decode},
	{"encode", yaml_encode},
	{"sequence", yaml_sequence},
	{NULL, NULL}
};

int luaopen_cork_yaml(lua_State *L)
{
	if (luaL_newmetatable(L, SEQ_MARK)) {
		lua_pushliteral(L, "sequence");
		lua_setfield(L, -2, "__yaml");
	}
	lua_pop(L, 1);
	luaL_newlib(L, yaml_funcs);
	lua_pushlightuserdata(L, NULL);
	lua_setfield(L, -2, "null");
	return 1;
}
