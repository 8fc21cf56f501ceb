// A small, strict JSON reader (RFC 8259) for config.json, safetensors headers and index files.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace hw {

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };
  using Member = std::pair<std::string, Json>;

  // Parses a whole document. Throws EngineError("<where>: invalid JSON at byte N: <what>").
  // Strict: no comments, no trailing commas, no NaN/Infinity, no duplicate keys, valid UTF-8.
  static Json parse(const std::string& text, const std::string& where);
  // Reads and parses a file; errors name the path.
  static Json parse_file(const std::string& path);

  Type type() const { return type_; }
  const char* type_name() const;  // "null", "boolean", "number", ... for error messages
  bool is_null() const { return type_ == Type::Null; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_int() const { return type_ == Type::Number && is_int_; }  // written without . or e, fits int64
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }

  // Typed access; each throws EngineError when the value has another type.
  bool as_bool() const;
  double as_double() const;  // any number
  int64_t as_int() const;    // integer literals only
  const std::string& as_string() const;
  const std::vector<Json>& as_array() const;
  const std::vector<Member>& items() const;  // object members in document order

  // Object member by key; nullptr when absent or when this is not an object.
  const Json* get(const std::string& key) const;
  // Elements of an array or members of an object; 0 otherwise.
  size_t size() const;

 private:
  friend class JsonParser;
  Type type_ = Type::Null;
  bool bool_ = false;
  bool is_int_ = false;
  int64_t int_ = 0;
  double num_ = 0.0;
  std::string str_;
  std::vector<Json> arr_;
  std::vector<Member> obj_;
};

}  // namespace hw
