// Result<T>: errors are values. Nothing in the engine's public surface throws; a failed call returns an
// Error whose message names the file and the field or tensor at fault.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace wb {

struct Error {
    std::string message;
};

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : m_v(std::move(value)) {}
    Result(Error e) : m_v(std::move(e)) {}

    bool ok() const { return m_v.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() & { return std::get<0>(m_v); }
    const T& value() const& { return std::get<0>(m_v); }
    T&& value() && { return std::get<0>(std::move(m_v)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const Error& error() const { return std::get<1>(m_v); }

private:
    std::variant<T, Error> m_v;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error e) : m_err(std::move(e)), m_ok(false) {}
    bool ok() const { return m_ok; }
    explicit operator bool() const { return m_ok; }
    const Error& error() const { return m_err; }

private:
    Error m_err;
    bool m_ok = true;
};

inline Error makeError(std::string msg) { return Error{std::move(msg)}; }

}  // namespace wb

// Propagate an error from an expression returning Result<...>.
#define WB_TRY(expr)                                   \
    do {                                               \
        auto&& wb_try_r_ = (expr);                     \
        if (!wb_try_r_.ok()) return wb_try_r_.error(); \
    } while (0)
