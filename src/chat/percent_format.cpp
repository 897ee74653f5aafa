// Python printf-style formatting over Values.
#include "chat/percent_format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "chat/template_error.h"
#include "chat/utf8.h"

namespace tandem::chat {
namespace {

struct Spec {
  std::string flags;
  int64_t width = -1;
  int64_t precision = -1;
  char conversion = 's';
};

class Formatter {
 public:
  Formatter(RenderState& state, const std::string& format, const Value& args)
      : state_(state), format_(format), args_(args) {
    if (args.is_tuple()) {
      positional_ = args.as_list();
    } else if (!args.is_dict()) {
      positional_.push_back(args);
    }
  }

  std::string run() {
    std::string out;
    size_t i = 0;
    while (i < format_.size()) {
      const size_t pct = format_.find('%', i);
      if (pct == std::string::npos) {
        out.append(format_, i, std::string::npos);
        break;
      }
      out.append(format_, i, pct - i);
      i = convert(pct + 1, out);
      state_.check_string_size(out.size());
    }
    // Python treats any non-tuple with __getitem__ (dict, list) as a possible mapping and
    // then does not complain about unused arguments.
    const bool mapping_like = args_.is_dict() || args_.is_plain_list() || args_.is_undefined();
    if (used_ < positional_.size() && !mapping_like && !used_mapping_)
      template_fail("not all arguments converted during string formatting");
    state_.charge_bytes(out.size());
    return out;
  }

 private:
  char at(size_t i) const {
    if (i >= format_.size()) template_fail("incomplete format");
    return format_[i];
  }

  const Value& next_arg() {
    if (used_ >= positional_.size()) template_fail("not enough arguments for format string");
    return positional_[used_++];
  }

  int64_t parse_number(size_t& i) {
    if (at(i) == '*') {
      ++i;
      const Value& v = next_arg();
      if (!v.is_int() && !v.is_bool()) template_fail("* wants int");
      return v.as_int();
    }
    int64_t n = 0;
    while (i < format_.size() && format_[i] >= '0' && format_[i] <= '9') {
      n = n * 10 + (format_[i++] - '0');
      if (n > 1'000'000) template_fail("width or precision too big");
    }
    return n;
  }

  // Parses the specification after '%' starting at i, appends the conversion, returns the end.
  size_t convert(size_t i, std::string& out) {
    const Value* value = nullptr;
    Value keyed;
    if (at(i) == '(') {
      const size_t close = format_.find(')', i);
      if (close == std::string::npos) template_fail("incomplete format key");
      if (!args_.is_dict()) template_fail("format requires a mapping");
      const Value* v = args_.as_dict().find(std::string_view(format_).substr(i + 1, close - i - 1));
      if (v == nullptr)
        template_fail("format key '{}' not found", format_.substr(i + 1, close - i - 1));
      keyed = *v;
      value = &keyed;
      used_mapping_ = true;
      i = close + 1;
    }
    Spec spec;
    while (std::string_view("#0- +").find(at(i)) != std::string_view::npos)
      spec.flags += format_[i++];
    if (at(i) == '*' || (at(i) >= '0' && at(i) <= '9')) spec.width = parse_number(i);
    if (at(i) == '.') {
      ++i;
      spec.precision = parse_number(i);
    }
    while (at(i) == 'h' || at(i) == 'l' || at(i) == 'L') ++i;
    spec.conversion = at(i);
    if (spec.conversion == '%') {
      out.push_back('%');
      return i + 1;
    }
    if (value == nullptr) value = &next_arg();
    if (spec.width < -1) {  // a negative `*` width left-justifies
      spec.flags += '-';
      spec.width = -spec.width;
    }
    state_.check_string_size(static_cast<size_t>(std::max<int64_t>(spec.width, 0)));
    state_.check_string_size(static_cast<size_t>(std::max<int64_t>(spec.precision, 0)));
    out += format_one(spec, *value);
    return i + 1;
  }

  std::string pad(const Spec& spec, std::string body) const {
    const auto len = static_cast<int64_t>(utf8_length(body));
    if (spec.width <= len) return body;
    state_.check_string_size(static_cast<size_t>(spec.width));
    const std::string fill(static_cast<size_t>(spec.width - len), ' ');
    return spec.flags.find('-') != std::string::npos ? body + fill : fill + body;
  }

  std::string format_one(const Spec& spec, const Value& v) const {
    switch (spec.conversion) {
      case 's':
      case 'r':
      case 'a': {
        std::string s = spec.conversion == 's' ? to_python_str(v) : python_repr(v);
        if (spec.precision >= 0) {
          const std::vector<size_t> offsets = code_point_offsets(s);
          if (static_cast<size_t>(spec.precision) + 1 < offsets.size())
            s.resize(offsets[static_cast<size_t>(spec.precision)]);
        }
        return pad(spec, std::move(s));
      }
      case 'c':
        if (v.is_string() && utf8_length(v.as_string()) == 1) return pad(spec, v.as_string());
        if (v.is_int() && v.as_int() >= 0 && v.as_int() <= 0x10FFFF) {
          std::string s;
          append_utf8(s, static_cast<char32_t>(v.as_int()));
          return pad(spec, s);
        }
        template_fail("%c requires an int or a single character");
      case 'd':
      case 'i':
      case 'u':
      case 'o':
      case 'x':
      case 'X':
        return format_integer(spec, v);
      case 'e':
      case 'E':
      case 'f':
      case 'F':
      case 'g':
      case 'G':
        return format_float(spec, v);
      default:
        template_fail("unsupported format character '{}'", spec.conversion);
    }
  }

  std::string printf_spec(const Spec& spec, const char* length, char conversion) const {
    std::string s = fmt::format("%{}", spec.flags);
    if (spec.width >= 0) s += fmt::format("{}", spec.width);
    if (spec.precision >= 0) s += fmt::format(".{}", spec.precision);
    return fmt::format("{}{}{}", s, length, conversion);
  }

  std::string run_printf(const std::string& f, auto value) const {
    const int n = std::snprintf(nullptr, 0, f.c_str(), value);
    if (n < 0) template_fail("invalid format");
    std::string out(static_cast<size_t>(n) + 1, '\0');
    std::snprintf(out.data(), out.size(), f.c_str(), value);
    out.pop_back();
    return out;
  }

  std::string format_integer(const Spec& spec, const Value& v) const {
    if (!v.is_number())
      template_fail("%{} format: a real number is required, not {}", spec.conversion,
                    v.type_name());
    if (v.is_float() &&
        (spec.conversion == 'o' || spec.conversion == 'x' || spec.conversion == 'X'))
      template_fail("%{} format: an integer is required, not float", spec.conversion);
    double d = v.as_float();
    if (v.is_float() && (!std::isfinite(d) || std::fabs(d) >= 9.2e18))
      template_fail("cannot convert float {} to integer", format_python_float(d));
    const long long n =
        v.is_float() ? static_cast<long long>(d) : static_cast<long long>(v.as_int());
    const char conv = spec.conversion == 'i' || spec.conversion == 'u' ? 'd' : spec.conversion;
    if (n < 0 && conv != 'd') {  // Python prints a sign, not the two's complement
      Spec unsigned_spec{spec.flags, -1, spec.precision, conv};
      std::erase(unsigned_spec.flags, '0');
      const auto magnitude = static_cast<unsigned long long>(-(n + 1)) + 1;
      return pad(spec,
                 fmt::format("-{}", run_printf(printf_spec(unsigned_spec, "ll", conv), magnitude)));
    }
    std::string out = run_printf(printf_spec(spec, "ll", conv), n);
    if (spec.flags.find('#') != std::string::npos && conv == 'o') {
      const size_t zero = out.find('0');
      if (zero != std::string::npos)
        out = fmt::format("{}o{}", out.substr(0, zero + 1),
                          out.substr(zero + 1));  // Python's 0o prefix
    }
    return out;
  }

  std::string format_float(const Spec& spec, const Value& v) const {
    if (!v.is_number()) template_fail("must be real number, not {}", v.type_name());
    return run_printf(printf_spec(spec, "", spec.conversion), v.as_float());
  }

  RenderState& state_;
  const std::string& format_;
  const Value& args_;
  std::vector<Value> positional_;
  size_t used_ = 0;
  bool used_mapping_ = false;
};

}  // namespace

std::string percent_format(RenderState& state, const std::string& format, const Value& args) {
  return Formatter(state, format, args).run();
}

}  // namespace tandem::chat
