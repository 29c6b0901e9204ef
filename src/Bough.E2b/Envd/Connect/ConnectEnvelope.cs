using System.Buffers.Binary;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Bough.E2b.Envd.Connect;

/// <summary>
/// Connect's streaming framing: each message is <c>[flags:u8][length:u32 big-endian][payload]</c>;
/// flag 0x02 marks the end-stream message (<c>{}</c> or <c>{"error":{...}}</c>), flag 0x01
/// (compression) is refused as nothing here negotiates it.
/// </summary>
internal static class ConnectEnvelope
{
    public const byte EndStream = 0x02;
    private const byte Compressed = 0x01;

    /// <summary>Largest request message read (the SDK's requests are a few KiB).</summary>
    public const int MaxRequestBytes = 4 * 1024 * 1024;

    /// <summary>Reads the single request message of a server-streaming call.</summary>
    public static async Task<byte[]> ReadSingleAsync(HttpRequest request, CancellationToken ct)
    {
        var header = new byte[5];
        await request.Body.ReadExactlyAsync(header, ct);
        if ((header[0] & Compressed) != 0)
            throw new ConnectException(ConnectError.Unimplemented, "compressed messages are not supported");
        var length = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(1));
        if (length > MaxRequestBytes)
            throw new ConnectException(ConnectError.ResourceExhausted, $"the request message is larger than {MaxRequestBytes} bytes");
        var payload = new byte[length];
        await request.Body.ReadExactlyAsync(payload, ct);
        return payload;
    }

    /// <summary>Writes one message (or the end-stream message) and flushes it, so the client sees it at once.</summary>
    public static async Task WriteAsync(HttpResponse response, byte[] json, bool end, CancellationToken ct)
    {
        var header = new byte[5];
        header[0] = end ? EndStream : (byte)0;
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(1), (uint)json.Length);
        await response.Body.WriteAsync(header, ct);
        await response.Body.WriteAsync(json, ct);
        await response.Body.FlushAsync(ct);
    }

    public static Task WriteEndAsync(HttpResponse response, ConnectError? error, CancellationToken ct) =>
        WriteAsync(response, error is null ? "{}"u8.ToArray() : JsonSerializer.SerializeToUtf8Bytes(new { error }, E2bJson.Options), end: true, ct);
}
