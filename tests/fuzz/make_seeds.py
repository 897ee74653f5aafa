#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target (corpus/<target>/seed-*): valid inputs of each
format, from which libFuzzer mutates. Run again after editing; scripts/test_fuzz.sh only reads
them (the inputs a run discovers go to build-fuzz/, not into the repository)."""
import json, os, struct, glob

ROOT = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(ROOT, "..", ".."))
SHARED = os.environ.get("TANDEM_SHARED", os.path.join(REPO, "..", "shared"))

def write(target, seeds):
    d = os.path.join(ROOT, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for f in glob.glob(os.path.join(d, "seed-*")):
        os.remove(f)
    for i, data in enumerate(seeds):
        with open(os.path.join(d, f"seed-{i:02d}"), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())

# tokenizer: mode byte (bit 0 Llama 3, bit 1 ids, bit 2 add special / raw ids, bit 3 skip special)
texts = ["Once upon a time", "Hello world! 123", "h\u00e9llo w\u00f6rld \u65e5\u672c\u8a9e \U0001f389",
         "<|begin_of_text|>hi<|eot_id|>", "<s>tab\tnew\nline</s>", "  leading and trailing  ", "'s 're 've",
         "\u00a0\u2003\u200b"]
tok = []
for t in texts:
    tok += [b"\x00" + t.encode(), b"\x01" + t.encode(), b"\x05" + t.encode()]
def ids(*values):
    return b"".join(struct.pack("<I", v)[:3] for v in values)
tok += [b"\x02" + ids(1, 346, 306, 414, 263, 304, 341, 3),
        b"\x03" + ids(128000, 9906, 1917, 0, 128009, 220),
        b"\x0a" + ids(3, 260, 261, 262)]
write("tokenizer", tok)

# request_parser: endpoint byte, then the body
bodies = [
    (0, {"model": "m", "prompt": "Once upon a time", "max_tokens": 8, "temperature": 0.7, "top_p": 0.9,
         "top_k": 40, "stop": ["\n"], "seed": 1, "logprobs": 2, "n": 2, "stream": True,
         "stream_options": {"include_usage": True}}),
    (0, {"prompt": [[1, 2, 3], [4, 5]], "max_tokens": 2, "echo": True, "stop_token_ids": [2],
         "kv_transfer_params": {"disagg_spec": {"req_id": "r", "receiver_host": "h",
                                                "receiver_init_port": [7300], "receiver_alloc_port": 7400}}}),
    (1, {"model": "m", "messages": [{"role": "system", "content": "s"}, {"role": "user",
         "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
         {"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function":
          {"name": "f", "arguments": "{\"x\": 1}"}}]}, {"role": "tool", "content": "r"}],
         "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "auto",
         "logprobs": True, "top_logprobs": 2, "max_completion_tokens": 5,
         "chat_template_kwargs": {"enable_thinking": False}}),
    (1, {"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": False,
         "continue_final_message": True, "min_tokens": 1, "repetition_penalty": 1.1}),
    (2, {"prompt": "hello", "add_special_tokens": False, "return_token_strs": True}),
    (2, {"messages": [{"role": "user", "content": "hi"}]}),
    (3, {"tokens": [1, 2, 3]}),
]
req = [bytes([e]) + json.dumps(b).encode() for e, b in bodies]
req += [b"\x00{\"prompt\": \"a\", \"x\": [[[[{}]]]]}", b"\x01[]", b"\x00{\"prompt\": \"\\ud83c\\udf89\"}"]
write("request_parser", req)

# jinja: byte 0 even -> template; odd -> messages JSON for the golden templates
jin = []
for name in ("chatml", "llama3", "mistral", "features"):
    path = os.path.join(SHARED, "golden", "chat", name + ".json")
    if os.path.exists(path):
        jin.append(b"\x00" + json.load(open(path))["template"].encode())
jin += [b"\x00{% for m in messages %}{{ m.role | upper }}{{ m['content'] | trim }}{% if not loop.last %},"
        b"{% endif %}{% endfor %}{{ tools | tojson(indent=2) }}{% set ns = namespace(x=0) %}"
        b"{{ '%s-%d' % ('a', 3) }}{{ range(3) | list }}{{ bos_token ~ eos_token }}",
        b"\x00{% macro f(a, b=2) %}{{ a + b }}{% endmacro %}{{ f(1) }}{{ 'x' * 3 }}"
        b"{{ {'a': 1}.items() | list }}{{ strftime_now('%Y') }}{% if x is defined %}{% endif %}"
        b"{{ raise_exception('no') if false }}",
        b"\x01" + json.dumps([{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                               {"role": "assistant", "content": "a"}]).encode(),
        b"\x01" + json.dumps([{"role": "user", "content": "only"}]).encode()]
write("jinja", jin)

# safetensors: 8-byte header length, JSON header, data
def st(header, data):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data
write("safetensors", [
    st({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, bytes(16)),
    st({"__metadata__": {"format": "pt"}, "a": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]},
        "b": {"dtype": "F16", "shape": [1, 1], "data_offsets": [6, 8]}}, bytes(8)),
    st({"e": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}, b""),
    st({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, bytes(3)),
])

# config: byte 0 even -> LMCache YAML; odd -> --kv-transfer-config JSON
cfg = []
for f in sorted(glob.glob(os.path.join(REPO, "examples", "disagg_prefill", "1p1d", "configs", "*.yaml"))):
    cfg.append(b"\x00" + open(f, "rb").read())
cfg += [b"\x00chunk_size: 16\nlocal_cpu: true\nmax_local_cpu_size: 1.5\nlocal_disk: file:///tmp/x/\n"
        b"pd_allowed_peer_hosts: [localhost, '10.0.0.1']\nnixl_role: sender\n",
        b"\x01" + json.dumps({"kv_connector": "LMCacheConnectorV1", "kv_role": "kv_producer",
                              "kv_connector_extra_config": {"discard_partial_chunks": False,
                                                            "lmcache_rpc_port": "producer1"}}).encode(),
        b"\x01" + json.dumps({"kv_connector": "LMCacheConnectorV1", "kv_role": "kv_consumer",
                              "kv_connector_extra_config": {"skip_last_n_tokens": 1}}).encode(),
        b"\x01{\"kv_connector\": \"LMCacheConnectorV1\", \"kv_role\": \"kv_both\"}"]
write("config", cfg)

# wire_protocol: frames as wire_protocol.cpp encodes them
def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF
def frame(t, payload):
    return struct.pack("<IHHII", 0x564B4454, 1, t, len(payload), crc32c(payload)) + payload
def s(text):
    b = text.encode()
    return struct.pack("<H", len(b)) + b
h16 = bytes(range(16))
write("wire_protocol", [
    frame(1, struct.pack("<HB", 1, 1) + s("prefiller@host:7100")),
    frame(2, struct.pack("<HB", 1, 0) + s("decoder") + struct.pack("<QQI", 0x7f0000000000, 1 << 24, 4096)
          + struct.pack("<I", 4) + b"rkey" + s("")),
    frame(3, s("cmpl-1") + h16 + struct.pack("<I", 2) + h16 + struct.pack("<IQ", 16, 4096)
          + h16[::-1] + struct.pack("<IQ", 5, 1280)),
    frame(4, s("cmpl-1") + b"\x00" + struct.pack("<I", 2) + b"\x00" + struct.pack("<Q", 0)
          + b"\x01" + struct.pack("<Q", 0) + s("")),
    frame(4, s("cmpl-2") + b"\x01" + struct.pack("<I", 0) + s("buffer full")),
    frame(5, s("cmpl-1") + struct.pack("<I", 1) + h16),
    frame(6, s("cmpl-1") + s("client went away")),
    frame(7, struct.pack("<Q", 42)),
])
for t in sorted(os.listdir(os.path.join(ROOT, "corpus"))):
    print(t, len(os.listdir(os.path.join(ROOT, "corpus", t))))
