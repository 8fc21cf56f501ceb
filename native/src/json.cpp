#include "json.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

namespace hw {

namespace {
// Deep enough for any real config; shallow enough that a hostile file cannot blow the stack.
constexpr int kMaxDepth = 256;
}  // namespace

class JsonParser {
 public:
  JsonParser(const std::string& text, const std::string& where) : s_(text), where_(where) {}

  Json document() {
    skip_ws();
    Json v = value(0);
    skip_ws();
    if (pos_ != s_.size()) error("unexpected content after the value");
    return v;
  }

 private:
  const std::string& s_;
  const std::string& where_;
  size_t pos_ = 0;

  [[noreturn]] void error(const std::string& what) const { error_at(pos_, what); }
  [[noreturn]] void error_at(size_t at, const std::string& what) const {
    fail(where_, "invalid JSON at byte " + std::to_string(at) + ": " + what);
  }

  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[pos_]; }

  void skip_ws() {
    while (!at_end()) {
      char c = s_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  void expect_word(const char* word) {
    size_t n = std::strlen(word);
    if (s_.compare(pos_, n, word) != 0) error(std::string("expected a value (") + word + "?)");
    pos_ += n;
  }

  Json value(int depth) {
    if (depth > kMaxDepth) error("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    if (at_end()) error("unexpected end of input");
    Json v;
    switch (peek()) {
      case '{':
        return object(depth);
      case '[':
        return array(depth);
      case '"':
        v.type_ = Json::Type::String;
        v.str_ = string();
        return v;
      case 't':
        expect_word("true");
        v.type_ = Json::Type::Bool;
        v.bool_ = true;
        return v;
      case 'f':
        expect_word("false");
        v.type_ = Json::Type::Bool;
        return v;
      case 'n':
        expect_word("null");
        return v;
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return number();
        if (peek() > ' ' && peek() < 0x7F) error(std::string("expected a value, got '") + peek() + "'");
        error("expected a value");
    }
  }

  Json object(int depth) {
    Json v;
    v.type_ = Json::Type::Object;
    ++pos_;  // '{'
    skip_ws();
    if (peek() == '}') {
      ++pos_;
      return v;
    }
    for (;;) {
      skip_ws();
      if (peek() != '"') error(at_end() ? "unexpected end of input" : "expected a string key");
      size_t key_at = pos_;
      std::string key = string();
      skip_ws();
      if (peek() != ':') error("expected ':' after an object key");
      ++pos_;
      skip_ws();
      v.obj_.emplace_back(std::move(key), value(depth + 1));
      key_offsets_.push_back(key_at);
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        break;
      }
      error(at_end() ? "unexpected end of input" : "expected ',' or '}' in an object");
    }
    check_duplicates(v.obj_);
    return v;
  }

  // Duplicate keys are legal in the grammar but ambiguous; a checkpoint header must not have them.
  void check_duplicates(const std::vector<Json::Member>& members) {
    size_t n = members.size();
    size_t first_offset = key_offsets_.size() - n;
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return members[a].first < members[b].first; });
    for (size_t i = 1; i < n; ++i) {
      if (members[order[i]].first == members[order[i - 1]].first) {
        size_t later = std::max(order[i], order[i - 1]);
        error_at(key_offsets_[first_offset + later], "duplicate key '" + members[later].first + "'");
      }
    }
    key_offsets_.resize(first_offset);
  }

  Json array(int depth) {
    Json v;
    v.type_ = Json::Type::Array;
    ++pos_;  // '['
    skip_ws();
    if (peek() == ']') {
      ++pos_;
      return v;
    }
    for (;;) {
      skip_ws();
      v.arr_.push_back(value(depth + 1));
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        break;
      }
      error(at_end() ? "unexpected end of input" : "expected ',' or ']' in an array");
    }
    return v;
  }

  Json number() {
    size_t start = pos_;
    auto digits = [&] {
      size_t d = pos_;
      while (!at_end() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - d;
    };
    bool integral = true;
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
      if (peek() >= '0' && peek() <= '9') error("leading zeros are not allowed");
    } else if (digits() == 0) {
      error("expected a digit");
    }
    if (peek() == '.') {
      integral = false;
      ++pos_;
      if (digits() == 0) error("expected a digit after '.'");
    }
    if (peek() == 'e' || peek() == 'E') {
      integral = false;
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (digits() == 0) error("expected a digit in the exponent");
    }
    const char* first = s_.data() + start;
    const char* last = s_.data() + pos_;
    Json v;
    v.type_ = Json::Type::Number;
    // from_chars ignores the C locale, unlike strtod (the host process may set one).
    auto r = std::from_chars(first, last, v.num_);
    if (r.ec == std::errc::result_out_of_range) error_at(start, "number out of range");
    if (r.ec != std::errc() || r.ptr != last) error_at(start, "malformed number");
    if (integral) {
      auto ri = std::from_chars(first, last, v.int_);
      v.is_int_ = ri.ec == std::errc();
      if (v.is_int_) v.num_ = double(v.int_);
    }
    return v;
  }

  unsigned hex4() {
    if (pos_ + 4 > s_.size()) error("unexpected end of input in a \\u escape");
    unsigned u = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      u <<= 4;
      if (c >= '0' && c <= '9')
        u |= unsigned(c - '0');
      else if (c >= 'a' && c <= 'f')
        u |= unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        u |= unsigned(c - 'A' + 10);
      else
        error_at(pos_ - 1, "invalid hex digit in a \\u escape");
    }
    return u;
  }

  static void put_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    }
  }

  // Length of the valid UTF-8 sequence at pos_ (>= 2 bytes; ASCII is handled by the caller).
  size_t utf8_length() const {
    auto byte = [&](size_t i) { return pos_ + i < s_.size() ? uint8_t(s_[pos_ + i]) : 0u; };
    auto cont = [&](size_t i) { return (byte(i) & 0xC0) == 0x80; };
    uint8_t b = byte(0);
    if (b >= 0xC2 && b <= 0xDF) return cont(1) ? 2 : 0;
    if (b >= 0xE0 && b <= 0xEF) {
      uint8_t b1 = byte(1);
      if ((b == 0xE0 && b1 < 0xA0) || (b == 0xED && b1 > 0x9F)) return 0;  // overlong, surrogate
      return cont(1) && cont(2) ? 3 : 0;
    }
    if (b >= 0xF0 && b <= 0xF4) {
      uint8_t b1 = byte(1);
      if ((b == 0xF0 && b1 < 0x90) || (b == 0xF4 && b1 > 0x8F)) return 0;  // overlong, > U+10FFFF
      return cont(1) && cont(2) && cont(3) ? 4 : 0;
    }
    return 0;
  }

  std::string string() {
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (at_end()) error("unterminated string");
      unsigned char c = uint8_t(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) error("control character in a string (must be escaped)");
      if (c >= 0x80) {
        size_t n = utf8_length();
        if (n == 0) error("invalid UTF-8 in a string");
        out.append(s_, pos_, n);
        pos_ += n;
        continue;
      }
      if (c != '\\') {
        out += char(c);
        ++pos_;
        continue;
      }
      size_t esc_at = pos_;
      ++pos_;
      if (at_end()) error("unterminated string");
      char e = s_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF) error_at(esc_at, "unpaired low surrogate");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            // A high surrogate must be followed by an escaped low one: together one code point.
            if (s_.compare(pos_, 2, "\\u") != 0) error_at(esc_at, "unpaired high surrogate");
            pos_ += 2;
            unsigned lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) error_at(esc_at, "unpaired high surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          put_utf8(out, cp);
          break;
        }
        default:
          error_at(esc_at, "invalid escape sequence");
      }
    }
  }

  std::vector<size_t> key_offsets_;  // byte offsets of the keys of the objects being parsed
};

Json Json::parse(const std::string& text, const std::string& where) {
  return JsonParser(text, where).document();
}

Json Json::parse_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open (") + std::strerror(errno) + ")");
  struct stat st {};
  std::string text;
  int err = ::fstat(fd, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
  bool ok = err == 0;
  if (ok) {
    text.resize(size_t(st.st_size));
    size_t got = 0;
    while (got < text.size()) {
      ssize_t n = ::read(fd, &text[got], text.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ok = false;
        err = n < 0 ? errno : EIO;
        break;
      }
      got += size_t(n);
    }
  }
  ::close(fd);
  if (!ok) fail(path, std::string("cannot read (") + std::strerror(err) + ")");
  return parse(text, path);
}

const char* Json::type_name() const {
  switch (type_) {
    case Type::Null:
      return "null";
    case Type::Bool:
      return "boolean";
    case Type::Number:
      return "number";
    case Type::String:
      return "string";
    case Type::Array:
      return "array";
    case Type::Object:
      return "object";
  }
  return "?";
}

namespace {
[[noreturn]] void wrong_type(const Json& j, const char* wanted) {
  throw EngineError(std::string("JSON value is ") + j.type_name() + ", not " + wanted);
}
}  // namespace

bool Json::as_bool() const {
  if (!is_bool()) wrong_type(*this, "boolean");
  return bool_;
}

double Json::as_double() const {
  if (!is_number()) wrong_type(*this, "number");
  return num_;
}

int64_t Json::as_int() const {
  if (!is_int()) wrong_type(*this, "an integer");
  return int_;
}

const std::string& Json::as_string() const {
  if (!is_string()) wrong_type(*this, "string");
  return str_;
}

const std::vector<Json>& Json::as_array() const {
  if (!is_array()) wrong_type(*this, "array");
  return arr_;
}

const std::vector<Json::Member>& Json::items() const {
  if (!is_object()) wrong_type(*this, "object");
  return obj_;
}

const Json* Json::get(const std::string& key) const {
  for (const Member& m : obj_)
    if (m.first == key) return &m.second;
  return nullptr;
}

size_t Json::size() const {
  if (is_array()) return arr_.size();
  if (is_object()) return obj_.size();
  return 0;
}

}  // namespace hw
