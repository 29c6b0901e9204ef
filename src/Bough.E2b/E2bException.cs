namespace Bough.E2b;

/// <summary>A failure of the E2B surface with the HTTP status E2B answers it with; written as <c>{"code":status,"message":...}</c>.</summary>
public sealed class E2bException(int status, string message, Exception? inner = null) : Exception(message, inner)
{
    public int Status { get; } = status;

    public static E2bException NotFound(string what) => new(404, what);
    public static E2bException Invalid(string message) => new(400, message);
}
