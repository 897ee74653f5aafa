// Global functions of the chat-template environment.
#include "chat/globals.h"

#include <chrono>
#include <unordered_map>

#include "chat/arguments.h"
#include "chat/render_state.h"
#include "chat/template_error.h"

namespace tandem::chat {
namespace {

Value global_range(RenderState& state, CallArgs& args) {
  if (!args.keyword.empty()) template_fail("range() takes no keyword arguments");
  const auto& p = args.positional;
  if (p.empty() || p.size() > 3) template_fail("range expected 1 to 3 arguments, got {}", p.size());
  int64_t start = 0;
  int64_t stop = 0;
  int64_t step = 1;
  if (p.size() == 1) {
    stop = int_arg("range", "stop", p[0]);
  } else {
    start = int_arg("range", "start", p[0]);
    stop = int_arg("range", "stop", p[1]);
    if (p.size() == 3) step = int_arg("range", "step", p[2]);
  }
  if (step == 0) template_fail("range() arg 3 must not be zero");
  // Length without overflow: ceil((stop - start) / step) when positive.
  const __int128 span = static_cast<__int128>(stop) - start;
  __int128 length = 0;
  if (step > 0 && span > 0) length = (span + step - 1) / step;
  if (step < 0 && span < 0) length = (span + step + 1) / step;
  if (length > kMaxRange)
    template_fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE ({}).",
                  kMaxRange);
  std::vector<Value> items;
  items.reserve(static_cast<size_t>(length));
  for (int64_t i = 0; i < static_cast<int64_t>(length); ++i)
    items.push_back(Value::integer(start + i * step));
  state.charge_bytes(items.size() * sizeof(Value));
  return Value::list(std::move(items));
}

// Entries of an optional positional mapping (or iterable of pairs), then the keywords.
Dict mapping_from_args(std::string_view fn, CallArgs& args) {
  if (args.positional.size() > 1)
    template_fail("{} expected at most 1 positional argument, got {}", fn, args.positional.size());
  Dict d;
  if (!args.positional.empty()) {
    const Value& src = args.positional[0];
    if (src.is_dict()) {
      for (const auto& [k, v] : src.as_dict().entries()) d.set(k, v);
    } else if (src.is_list()) {
      for (const Value& pair : src.as_list()) {
        if (!pair.is_list() || pair.as_list().size() != 2)
          template_fail("{}(): sequence elements must be pairs", fn);
        d.set(pair.as_list()[0], pair.as_list()[1]);
      }
    } else {
      template_fail("{}(): '{}' object is not a mapping", fn, src.type_name());
    }
  }
  for (auto& [k, v] : args.keyword) d.set(Value::string(k), v);
  return d;
}

Value global_dict(RenderState&, CallArgs& args) {
  return Value::dict(mapping_from_args("dict", args));
}

Value global_namespace(RenderState& state, CallArgs& args) {
  return state.new_namespace(mapping_from_args("namespace", args));
}

Value global_raise_exception(RenderState&, CallArgs& args) {
  const auto a = bind_args("raise_exception", args, {required("message")});
  throw TemplateError(to_python_str(a[0]));
}

// datetime.now().strftime(format): %f is microseconds; %z and %Z are empty (naive datetime).
Value global_strftime_now(RenderState& state, CallArgs& args) {
  const auto a = bind_args("strftime_now", args, {required("format")});
  const std::string& format = string_arg("strftime_now", "format", a[0]);
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = state.now();
  const auto micros =
      state.clock_fixed()
          ? 0
          : std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
                1000000;
  std::string c_format;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%' || i + 1 >= format.size()) {
      c_format.push_back(format[i]);
      continue;
    }
    const char d = format[++i];
    if (d == 'f') {
      c_format += fmt::format("{:06d}", micros);
    } else if (d != 'z' && d != 'Z') {
      c_format.push_back('%');
      c_format.push_back(d);
    }
  }
  std::tm local{};
  localtime_r(&t, &local);
  c_format.push_back('.');  // strftime's 0 return is ambiguous for empty output
  std::string out(c_format.size() * 4 + 64, '\0');
  while (true) {
    const size_t n = std::strftime(out.data(), out.size(), c_format.c_str(), &local);
    if (n > 0) {
      out.resize(n - 1);
      break;
    }
    state.check_string_size(out.size() * 2);
    out.resize(out.size() * 2);
  }
  return Value::string(std::move(out));
}

Value global_joiner(RenderState&, CallArgs& args) {
  const auto a = bind_args("joiner", args, {optional("sep", Value::string(", "))});
  auto used = std::make_shared<bool>(false);
  const Value sep = a[0];
  return Value::callable("joiner", [used, sep](RenderState&, CallArgs& call) {
    bind_args("joiner", call, {});
    if (!*used) {
      *used = true;
      return Value::string("");
    }
    return sep;
  });
}

const std::unordered_map<std::string_view, Value>& globals() {
  static const std::unordered_map<std::string_view, Value> table = {
      {"range", Value::callable("range", global_range)},
      {"dict", Value::callable("dict", global_dict)},
      {"namespace", Value::callable("namespace", global_namespace)},
      {"joiner", Value::callable("joiner", global_joiner)},
      {"raise_exception", Value::callable("raise_exception", global_raise_exception)},
      {"strftime_now", Value::callable("strftime_now", global_strftime_now)},
  };
  return table;
}

}  // namespace

const Value* find_global(std::string_view name) {
  const auto it = globals().find(name);
  return it == globals().end() ? nullptr : &it->second;
}

}  // namespace tandem::chat
