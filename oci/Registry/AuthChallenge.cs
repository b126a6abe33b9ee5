namespace Farm.Oci.Registry;

/// <summary>
/// One challenge of a <c>WWW-Authenticate</c> header: a scheme (<c>Basic</c>, <c>Bearer</c>) and its parameters
/// (<c>realm</c>, <c>service</c>, <c>scope</c>, <c>error</c>).
/// </summary>
/// <remarks>
/// https://distribution.github.io/distribution/spec/auth/token/#how-to-authenticate and RFC 7235 section 4.1.
/// Written by hand because <see cref="System.Net.Http.Headers.AuthenticationHeaderValue"/> leaves the
/// parameters as one unparsed string.
/// </remarks>
public sealed record AuthChallenge
{
    public required string Scheme { get; init; }

    public required IReadOnlyDictionary<string, string> Parameters { get; init; }

    public bool IsBearer => Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase);

    public bool IsBasic => Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase);

    public string? Realm => Parameters.GetValueOrDefault("realm");

    public string? Service => Parameters.GetValueOrDefault("service");

    /// <summary>Space-separated scopes the registry asked for, e.g. <c>repository:farm/app:pull,push</c>.</summary>
    public string? Scope => Parameters.GetValueOrDefault("scope");

    public string? Error => Parameters.GetValueOrDefault("error");

    /// <summary>Parses a header value's parameter list; <paramref name="parameters"/> is what follows the scheme.</summary>
    public static AuthChallenge Parse(string scheme, string? parameters)
    {
        ArgumentNullException.ThrowIfNull(scheme);
        var values = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var text = parameters ?? string.Empty;
        var i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && (text[i] == ',' || char.IsWhiteSpace(text[i])))
            {
                i++;
            }

            var nameStart = i;
            while (i < text.Length && text[i] != '=' && text[i] != ',')
            {
                i++;
            }

            var name = text[nameStart..i].Trim();
            if (i >= text.Length || text[i] != '=')
            {
                continue;
            }

            i++;
            string value;
            if (i < text.Length && text[i] == '"')
            {
                var sb = new System.Text.StringBuilder();
                i++;
                while (i < text.Length && text[i] != '"')
                {
                    if (text[i] == '\\' && i + 1 < text.Length)
                    {
                        i++;
                    }

                    sb.Append(text[i]);
                    i++;
                }

                i++;
                value = sb.ToString();
            }
            else
            {
                var valueStart = i;
                while (i < text.Length && text[i] != ',')
                {
                    i++;
                }

                value = text[valueStart..i].Trim();
            }

            if (name.Length > 0)
            {
                values[name] = value;
            }
        }

        return new AuthChallenge { Scheme = scheme, Parameters = values };
    }

    /// <summary>The challenges of a response; Bearer first, since a registry offering both prefers tokens.</summary>
    public static IReadOnlyList<AuthChallenge> FromResponse(HttpResponseMessage response)
    {
        ArgumentNullException.ThrowIfNull(response);
        return [.. response.Headers.WwwAuthenticate
            .Select(h => Parse(h.Scheme, h.Parameter))
            .OrderBy(c => c.IsBearer ? 0 : 1)];
    }
}
