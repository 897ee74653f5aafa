#!/usr/bin/env python3
"""Writes corpus.jsonl: the hostile HTTP requests tests/proxy/hostile_input_test.cpp sends to the
proxy and to each engine. One JSON object a line:
  name         unique
  method, path the request line (default POST /v1/completions)
  headers      extra raw header lines ("Name: value\\r\\n...")
  body         the body as text, or body_hex (bytes), or body_parts [[text, times], ...] (built by
               the test: the 100 MB body), or raw (the whole request, sent as is)
  half_close   the proxy's client shuts its write side after sending (the proxy sees a truncated
               request end); the engines' client does not (cpp-httplib answers nothing on a
               half-closed connection) and they answer after their 5-s read timeout
  status       the expected status on every server; proxy_status overrides it for the proxy
Every case expects an OpenAI-style JSON error, except the few "accepted" ones (status 200):
unknown fields are ignored, as vLLM does. Run it again after editing; the test reads the output."""
import json, os

M = "MODEL"  # the test puts the served model's name here
cases = []

def add(name, body=None, status=400, path="/v1/completions", method="POST", **kw):
    c = {"name": name, "method": method, "path": path, "status": status}
    if body is not None:
        c["body"] = body if isinstance(body, str) else json.dumps(body)
    c.update(kw)
    assert all(x["name"] != name for x in cases), name
    cases.append(c)

def comp(**fields):
    b = {"model": M, "prompt": "Once upon a time", "max_tokens": 4}
    b.update(fields)
    return {k: v for k, v in b.items() if v is not DROP}

def chat(**fields):
    b = {"model": M, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    b.update(fields)
    return {k: v for k, v in b.items() if v is not DROP}

DROP = object()
CHAT = "/v1/chat/completions"

# --- malformed JSON, on both generation endpoints ---
malformed = {
    "empty": "", "open-brace": "{", "close-brace": "}", "open-bracket": "[",
    "single-quotes": "{'prompt': 'x'}", "trailing-comma": '{"prompt": "a",}',
    "missing-comma": '{"prompt": "a" "max_tokens": 2}', "missing-value": '{"prompt": }',
    "bare-word": "hello", "nan-literal": '{"prompt": "a", "temperature": NaN}',
    "infinity-literal": '{"prompt": "a", "temperature": Infinity}',
    "two-objects": '{"prompt": "a"}{"prompt": "b"}', "trailing-garbage": '{"prompt": "a"} xyz',
    "comment": '{"prompt": "a" /* c */}', "bad-escape": '{"prompt": "\\q"}',
    "bad-unicode-escape": '{"prompt": "\\uZZZZ"}', "lone-surrogate": '{"prompt": "\\ud800"}',
    "unterminated-string": '{"prompt": "abc', "control-char": '{"prompt": "a\u0001b"}',
    "leading-zero": '{"prompt": "a", "max_tokens": 01}', "hex-number": '{"prompt": "a", "max_tokens": 0x10}',
    "plus-number": '{"prompt": "a", "max_tokens": +3}', "dot-number": '{"prompt": "a", "top_p": .5}',
    "key-not-string": '{prompt: "a"}', "number-key": '{1: "a"}',
}
for n, b in malformed.items():
    add("json-" + n, b)
    add("chat-json-" + n, b, path=CHAT)
for n, b in {"null": "null", "array": "[]", "number": "123", "string": '"prompt"', "true": "true",
             "array-of-object": '[{"prompt": "a"}]'}.items():
    add("not-object-" + n, b)
    add("chat-not-object-" + n, b, path=CHAT)
good = json.dumps(comp())
for cut in (1, 5, 10, 20, len(good) // 2, len(good) - 1):
    add(f"truncated-json-{cut}", good[:cut])
good_chat = json.dumps(chat())
for cut in (1, 12, 30, len(good_chat) - 1):
    add(f"chat-truncated-json-{cut}", good_chat[:cut], path=CHAT)

# --- wrong types and out-of-range values, /v1/completions ---
bad_fields = {
    "prompt": [123, {}, True, [1, "a"], [[]], [], "", [""], [[1, 2], "a"], [-1], [1.5],
               [2147483648], [[1], [-5]], None],
    "max_tokens": ["ten", -1, 0, 1.5, True, [], {}, -9223372036854775808],
    "temperature": ["hot", -1, 1e39, [], True, -1e-9],
    "top_p": [0, 2, -0.5, "x", 1.0000001],
    "top_k": ["5", 1.5, -5, 9223372036854775807],
    "min_p": [-1, 2, "x"],
    "n": [0, -1, 1000, "2", 2.5],
    "stream": ["yes", 1, [], {}],
    "seed": ["x", 1.5, 18446744073709551616, {}],
    "stop": [5, [1], [None], {"a": 1}],
    "stop_token_ids": [[-1], "x", [1.5], [4294967296], 5],
    "logprobs": [-1, 100, "x", True],
    "echo": ["x", 1],
    "presence_penalty": ["x", 5, -3],
    "frequency_penalty": [-3, 9, "x"],
    "repetition_penalty": [0, -1, "x"],
    "min_tokens": [-1, "x", 100],
    "ignore_eos": ["x", 0],
    "best_of": [3, "x"],
    "user": [5, []],
    "logit_bias": [{"1": 5}, "x"],
    "response_format": [{"type": "json_object"}, "x", {"type": 5}],
    "suffix": ["x"],
    "model": [5, []],
    "add_special_tokens": ["x"],
    "skip_special_tokens": [1],
    "include_stop_str_in_output": ["x"],
    "stream_options": ["x", {"include_usage": True}],
    "kv_transfer_params": ["x", 5, {"disagg_spec": 5}, {"disagg_spec": {"req_id": 5}},
                           {"disagg_spec": {"req_id": ""}},
                           {"disagg_spec": {"req_id": "r", "receiver_init_port": 0}},
                           {"disagg_spec": {"req_id": "r", "receiver_alloc_port": [70000]}},
                           {"disagg_spec": {"req_id": "r", "receiver_host": ""}},
                           {"disagg_spec": {"req_id": "x" * 2000}}],
    "prompt_logprobs": [1], "guided_json": [{}], "truncate_prompt_tokens": [5],
}
for field, values in bad_fields.items():
    for i, v in enumerate(values):
        add(f"field-{field}-{i}", comp(**{field: v}))
add("field-prompt-missing", comp(prompt=DROP))
add("model-empty", comp(model=""), status=404)
add("model-unknown", comp(model="no-such-model"), status=404)
add("prompt-token-id-out-of-vocab", comp(prompt=[1, 2, 512]))
add("prompt-token-id-huge", comp(prompt=[1, 2147483647]))
add("prompt-token-id-negative-nested", comp(prompt=[[1, 2], [3, -4]]))
add("prompt-too-long", comp(prompt=[1] * 5000))
add("prompt-text-too-long", comp(prompt="Once upon a time " * 2000))
add("max-tokens-past-context", comp(max_tokens=100000))
add("echo-with-logprobs", comp(echo=True, logprobs=2))
add("min-tokens-over-max", comp(min_tokens=10, max_tokens=2))
add("too-many-choices", comp(prompt=["a"] * 20, n=10))
add("huge-number-literal", '{"model": "MODEL", "prompt": "a", "max_tokens": 1e400}')
add("huge-negative-literal", '{"model": "MODEL", "prompt": "a", "temperature": -1e400}')
add("huge-integer-literal", '{"model": "MODEL", "prompt": "a", "max_tokens": 99999999999999999999999999}')
add("huge-seed-literal", '{"model": "MODEL", "prompt": "a", "seed": -99999999999999999999999999}')
add("unknown-plus-bad-field", comp(foo_bar=1, temperature="x"))
add("unknown-object-plus-bad-field", comp(extra={"a": [1, 2]}, n=0))

# --- chat ---
chat_bad = {
    "messages": ["x", [], [5], [{}], [{"role": 5, "content": "a"}], [{"role": "user", "content": 5}],
                 [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
                 [{"role": "user", "content": [{"type": "text"}]}],
                 [{"role": "user", "content": [{"type": "text", "text": 5}]}],
                 [{"role": "user", "content": [5]}],
                 [{"role": "user", "content": {"text": "a"}}],
                 [{"role": "hacker", "content": "a"}], [{"role": "", "content": "a"}],
                 [{"role": "USER", "content": "a"}], [{"role": "user\n", "content": "a"}],
                 [{"content": "no role"}], [{"role": None, "content": "a"}],
                 [{"role": "user", "content": "a"}, "x"], None, {"role": "user", "content": "a"}],
    "tools": ["x", [5], {"type": "function"}, [[]]],
    "tool_choice": ["required", {"type": "function", "function": {"name": "f"}}, 5, "auto"],
    "logprobs": ["x", 1],
    "top_logprobs": [3, 100, -1],
    "add_generation_prompt": ["x"],
    "continue_final_message": ["x", True],
    "chat_template_kwargs": ["x", [1], 5],
    "max_completion_tokens": [-1, 0, "x"],
    "max_tokens": [-1, "x"],
    "chat_template": ["{{ 1 }}"],
    "temperature": ["x", -2],
    "n": [0, 500],
    "stream": ["x"],
    "stream_options": [{"include_usage": True}, "x"],
    "model": [5],
    "kv_transfer_params": [{"disagg_spec": {"req_id": 5}}],
    "response_format": [{"type": "json_schema"}],
    "logit_bias": [{"5": 1}],
}
for field, values in chat_bad.items():
    for i, v in enumerate(values):
        add(f"chat-field-{field}-{i}", chat(**{field: v}), path=CHAT)
add("chat-messages-missing", chat(messages=DROP), path=CHAT)
add("chat-model-unknown", chat(model="nope"), status=404, path=CHAT)
add("chat-logprobs-with-top-over-limit", chat(logprobs=True, top_logprobs=1000), path=CHAT)
add("chat-prompt-too-long", chat(messages=[{"role": "user", "content": "Once upon a time " * 2000}]), path=CHAT)
# Template-breaking input: template variables overridden by chat_template_kwargs with values the
# template cannot use, and a continue_final_message whose text the template does not render.
add("chat-template-kwargs-messages-int", chat(chat_template_kwargs={"messages": 5}), path=CHAT)
add("chat-template-kwargs-messages-str", chat(chat_template_kwargs={"messages": "abc"}), path=CHAT)
add("chat-template-kwargs-messages-list", chat(chat_template_kwargs={"messages": [1, 2]}), path=CHAT)
add("chat-continue-final-empty", chat(messages=[{"role": "user", "content": "  "}],
                                     add_generation_prompt=False, continue_final_message=True), path=CHAT)
add("chat-continue-final-null", chat(messages=[{"role": "assistant", "content": None}],
                                    add_generation_prompt=False, continue_final_message=True), path=CHAT)
add("chat-template-raises", chat(messages=[{"role": "assistant", "content": "I start"}]), path=CHAT)
add("chat-template-raises-with-user-after", chat(messages=[{"role": "assistant", "content": "a"},
                                                          {"role": "user", "content": "b"}]), path=CHAT)
add("chat-unknown-plus-bad-field", chat(foo=1, top_p=5), path=CHAT)

# --- invalid UTF-8 (as raw bytes) in strings ---
def hexbody(prefix, bad, suffix):
    return (prefix.encode() + bad + suffix.encode()).hex()
for i, bad in enumerate([b"\xff", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf8\x88\x80\x80\x80",
                         b"\x80", b"\xf4\x90\x80\x80"]):
    add(f"utf8-prompt-{i}", None, body_hex=hexbody('{"model": "MODEL", "prompt": "a', bad, '"}'))
    add(f"chat-utf8-content-{i}", None, path=CHAT,
        body_hex=hexbody('{"model": "MODEL", "messages": [{"role": "user", "content": "', bad, '"}]}'))
add("utf8-in-key", None, body_hex=hexbody('{"model": "MODEL", "prompt": "a", "', b"\xff", '": 1}'))
add("utf8-model", None, body_hex=hexbody('{"model": "', b"\xfe\xff", '", "prompt": "a"}'))
add("utf16-body", None, body_hex=json.dumps(comp()).encode("utf-16").hex())

# --- deep nesting (built in the test from body_parts) ---
for depth in (1000, 100000):
    add(f"deep-prompt-array-{depth}", None, body_parts=[['{"model": "MODEL", "prompt": ', 1], ["[", depth], ["1", 1], ["]", depth], ["}", 1]])
    add(f"deep-unknown-object-{depth}", None, body_parts=[['{"model": "MODEL", "prompt": "a", "x": ', 1], ['{"a":', depth], ["1", 1], ["}", depth], ["}", 1]])
    add(f"chat-deep-template-kwargs-{depth}", None, path=CHAT, body_parts=[['{"model": "MODEL", "messages": [{"role": "user", "content": "a"}], "chat_template_kwargs": {"k": ', 1], ["[", depth], ["]", depth], ["}", 1]])
    add(f"chat-deep-content-{depth}", None, path=CHAT, body_parts=[['{"model": "MODEL", "messages": [{"role": "user", "content": ', 1], ["[", depth], ["]", depth], ["}]}", 1]])
add("deep-unclosed", None, body_parts=[["[", 1000000]])
add("chat-deep-tools-200", None, path=CHAT, body_parts=[['{"model": "MODEL", "messages": [{"role": "user", "content": "a"}], "tools": [{"type": "function", "function": {"name": "f", "parameters": ', 1], ['{"a":', 200], ["1", 1], ["}", 200], ["}}]}", 1]])

# --- huge bodies (over the 32 MiB default limit: 413) ---
add("body-100mb", None, status=413, body_parts=[['{"model": "MODEL", "prompt": "', 1], ["a", 100 << 20], ['"}', 1]])
add("chat-body-40mb", None, status=413, path=CHAT, body_parts=[['{"model": "MODEL", "messages": [{"role": "user", "content": "', 1], ["ab", 20 << 20], ['"}]}', 1]])
add("content-length-100mb-no-body", None, status=413, raw="POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n{")
add("content-length-huge", None, status=[400, 413], raw="POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n{}")
add("prompt-list-many-strings", comp(prompt=["a"] * 200))

# --- paths and methods ---
for m in ("GET", "PUT", "DELETE", "PATCH"):
    add(f"method-{m}-completions", None, status=405, method=m)
    add(f"method-{m}-chat", None, status=405, method=m, path=CHAT)
add("method-POST-models", "{}", status=405, path="/v1/models")
add("method-POST-health", "{}", status=405, path="/health")
add("method-POST-metrics", "{}", status=405, path="/metrics")
add("method-DELETE-models", None, status=405, method="DELETE", path="/v1/models")
for i, p in enumerate(["/", "/v1", "/v1/completion", "/v2/completions", "/v1/completions/x", "/V1/COMPLETIONS",
                       "/v1/../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/v1/engines/x/completions",
                       "/v1/embeddings", "/v1/responses", "/" + "a" * 4000, "/v1/completions%00", "//v1/completions"]):
    add(f"path-unknown-{i}", comp(), status=404, path=p)
add("method-unknown", None, status=[400, 405], method="BREW")
add("path-very-long", None, status=[404, 414, 431, 413], method="GET", path="/" + "a" * 20000)

# --- malformed HTTP (raw) ---
raw = {
    "request-line-garbage": "HELLO\r\n\r\n",
    "request-line-no-version": "POST /v1/completions\r\n\r\n",
    "request-line-bad-version": "POST /v1/completions HTTP/9.9\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    "request-line-extra-spaces": "POST  /v1/completions  HTTP/1.1\r\nHost: x\r\n\r\n",
    "header-no-colon": "POST /v1/completions HTTP/1.1\r\nHost x\r\nBadHeader\r\nContent-Length: 2\r\n\r\n{}",
    "content-length-negative": "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}",
    "content-length-text": "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
    "chunked-bad-size": "POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
    "chunked-truncated": "POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"pro",
}
for n, r in raw.items():
    # cpp-httplib reads Content-Length -1 as a huge length: 413 there, 400 at the proxy.
    add("http-" + n, None, status=[400, 413] if n == "content-length-negative" else 400, raw=r,
        half_close=True)
add("http-body-shorter-than-length", None, status=400, half_close=True,
    raw='POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"prompt": "a"')
add("http-body-shorter-than-length-chat", None, status=400, half_close=True,
    raw='POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{"messages"')
add("http-header-huge", None, status=[400, 413, 431], half_close=True,
    raw="GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + "a" * 100000 + "\r\n\r\n")

# --- /tokenize and /detokenize (engines only: the proxy serves no such route) ---
tok = {"x": "x", "empty": "", "array": "[]", "prompt-int": {"prompt": 5}, "neither": {},
       "both": {"prompt": "a", "messages": [{"role": "user", "content": "a"}]},
       "messages-bad": {"messages": [{"role": 5}]}, "add-special-str": {"prompt": "a", "add_special_tokens": "x"},
       "model-unknown": {"model": "nope", "prompt": "a"}}
for n, b in tok.items():
    add("tokenize-" + n, b, path="/tokenize", proxy_status=404, status=404 if n == "model-unknown" else 400)
detok = {"missing": {}, "string": {"tokens": "1,2"}, "negative": {"tokens": [-1]},
         "out-of-vocab": {"tokens": [1, 100000]}, "float": {"tokens": [1.5]}, "huge": {"tokens": [99999999999]},
         "nested": {"tokens": [[1]]}}
for n, b in detok.items():
    add("detokenize-" + n, b, path="/detokenize", proxy_status=404)

# --- accepted: unknown fields are ignored (vLLM's default), on every server alike ---
add("accepted-unknown-field", comp(foo_bar=1), status=200)
add("accepted-unknown-object", comp(metadata={"a": [1, {"b": None}]}), status=200)
add("chat-accepted-unknown-field", chat(frobnicate=True), status=200, path=CHAT)
# Template syntax in content is data, never code.
add("chat-accepted-jinja-in-content", chat(messages=[{"role": "user", "content":
    "{{ raise_exception('injected') }}{% for x in range(99999999) %}{% endfor %}{{ messages }}"}]),
    status=200, path=CHAT)
add("chat-accepted-unknown-message-field", chat(messages=[{"role": "user", "content": "Hi", "x": 1}]), status=200, path=CHAT)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus.jsonl")
with open(out, "w") as f:
    for c in cases:
        f.write(json.dumps(c, ensure_ascii=True) + "\n")
bad = sum(1 for c in cases if c["status"] != 200)
print(f"{len(cases)} cases ({bad} bad requests) -> {out}")
