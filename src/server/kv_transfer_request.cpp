// Parsing kv_transfer_params.disagg_spec field by field.
#include "server/kv_transfer_request.h"

#include <cstdint>

#include "server/openai_errors.h"
#include "transfer/wire_protocol.h"

namespace tandem {
namespace {

// A port, or a list of ports (one per rank): each an integer in [1, 65535].
std::vector<int> parse_ports(const RequestFields& f, const char* key) {
  const RequestFields::Json* v = f.get(key);
  if (!v) return {};
  auto valid = [](const RequestFields::Json& p) {
    return p.is_number_integer() && p.get<int64_t>() >= 1 && p.get<int64_t>() <= 65535;
  };
  std::vector<int> ports;
  if (v->is_array() && !v->empty()) {
    for (const auto& p : *v) {
      if (!valid(p)) break;
      ports.push_back(int(p.get<int64_t>()));
    }
    if (ports.size() == v->size()) return ports;
  } else if (valid(*v)) {
    return {int(v->get<int64_t>())};
  }
  fail_param(f.param(key).c_str(),
             "{} must be a port (1 to 65535) or a non-empty list of ports, got {}", f.quoted(key),
             brief_json(*v));
}

DisaggSpec parse_disagg_spec(const RequestFields& f) {
  DisaggSpec spec;
  std::optional<std::string> id = f.string("req_id");
  if (!id || id->empty() || id->size() > kMaxIdBytes) {
    fail_param(f.param("req_id").c_str(), "{} must be a string of 1 to {} bytes",
               f.quoted("req_id"), kMaxIdBytes);
  }
  spec.req_id = std::move(*id);
  spec.receiver_host = f.string("receiver_host");
  if (spec.receiver_host && spec.receiver_host->empty()) {
    fail_param(f.param("receiver_host").c_str(), "{} must not be empty", f.quoted("receiver_host"));
  }
  spec.receiver_init_port = parse_ports(f, "receiver_init_port");
  spec.receiver_alloc_port = parse_ports(f, "receiver_alloc_port");
  return spec;
}

}  // namespace

std::optional<KvTransferParams> parse_kv_transfer_params(const RequestFields& request) {
  std::optional<RequestFields::Json> object = request.object("kv_transfer_params");
  if (!object) return std::nullopt;
  RequestFields f(*object, "kv_transfer_params.");
  KvTransferParams params;
  if (std::optional<RequestFields::Json> spec = f.object("disagg_spec")) {
    params.disagg_spec = parse_disagg_spec(RequestFields(*spec, "kv_transfer_params.disagg_spec."));
  }
  // The vocabulary bound is checked with the prompt (request_planning.cpp).
  params.first_token_id = f.bounded_int("first_token_id", 0, INT32_MAX);
  return params;
}

}  // namespace tandem
