namespace Bough.Images.Oci;

/// <summary>
/// One <c>WWW-Authenticate</c> challenge: a scheme and its <c>key="value"</c> parameters. Parsed by hand
/// because values are quoted strings that may contain commas (<c>scope="repository:a:pull,push"</c>).
/// </summary>
internal sealed record AuthChallenge(string Scheme, IReadOnlyDictionary<string, string> Parameters)
{
    public string? this[string key] => Parameters.TryGetValue(key, out var v) ? v : null;

    public static AuthChallenge Parse(string scheme, string? parameter)
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var s = parameter ?? "";
        var i = 0;
        while (i < s.Length)
        {
            while (i < s.Length && (s[i] == ',' || char.IsWhiteSpace(s[i]))) i++;
            var keyStart = i;
            while (i < s.Length && s[i] != '=' && s[i] != ',') i++;
            var key = s[keyStart..i].Trim();
            if (i >= s.Length || s[i] != '=') { continue; }
            i++; // '='
            string value;
            if (i < s.Length && s[i] == '"')
            {
                i++;
                var sb = new System.Text.StringBuilder();
                while (i < s.Length && s[i] != '"')
                {
                    if (s[i] == '\\' && i + 1 < s.Length) i++;
                    sb.Append(s[i++]);
                }
                i++; // closing quote
                value = sb.ToString();
            }
            else
            {
                var vs = i;
                while (i < s.Length && s[i] != ',') i++;
                value = s[vs..i].Trim();
            }
            if (key.Length > 0) result[key] = value;
        }
        return new AuthChallenge(scheme, result);
    }
}
