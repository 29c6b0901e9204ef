using System.Text.Json;
using System.Text.Json.Serialization;
using Bough.Contracts;

namespace Bough.Client;

/// <summary>JSON settings for the client side of the wire.</summary>
internal static class ClientJson
{
    /// <summary>Requests are written exactly as the server expects them.</summary>
    public static JsonSerializerOptions Write => BoughJson.Options;

    /// <summary>
    /// Responses are read leniently: the server rejects unknown fields to catch client typos, but
    /// a client must keep working when a newer daemon adds fields to its responses.
    /// </summary>
    public static JsonSerializerOptions Read { get; } = CreateRead();

    private static JsonSerializerOptions CreateRead()
    {
        var o = BoughJson.Create();
        o.UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip;
        o.MakeReadOnly(populateMissingResolver: true);
        return o;
    }
}
