using System.Text.Json;

namespace Farm.Contracts;

/// <summary>
/// How a client hands a farm the secrets and SSH agents of one build (<c>farm build --secret</c>, <c>--ssh</c>): a
/// request header of <c>POST /builds</c>, never the body (the body is what the coordinator stores), holding base64url
/// of <c>{"secrets": {"ID": "BASE64 OF THE VALUE"}, "ssh": {"ID": "/path/of/agent.sock"}}</c>. The CLI writes it; the
/// coordinator reads it (coordinator/Auth/BuildSecrets.cs) and keeps the values in memory only.
/// </summary>
public static class BuildSecretsHeader
{
    /// <summary>The header's name.</summary>
    public const string Name = "Farm-Build-Secrets";

    /// <summary>At most this many bytes of secret values per build (BuildKit allows 500 KiB per secret; a build's secrets are tokens and keys).</summary>
    public const int MaxBytes = 512 * 1024;

    /// <summary>The header's value for <paramref name="values"/>.</summary>
    public static string Encode(BuildSecretValues values)
    {
        ArgumentNullException.ThrowIfNull(values);
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartObject("secrets");
            foreach (var (id, value) in values.Secrets)
            {
                writer.WriteBase64String(id, value);
            }

            writer.WriteEndObject();
            writer.WriteStartObject("ssh");
            foreach (var (id, socket) in values.SshAgents)
            {
                writer.WriteString(id, socket);
            }

            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        return Convert.ToBase64String(buffer.ToArray()).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    /// <summary>The values in header value <paramref name="value"/>; null with the reason when it is malformed (the reason never quotes it).</summary>
    public static BuildSecretValues? TryDecode(string value, out string? problem)
    {
        ArgumentNullException.ThrowIfNull(value);
        problem = null;
        byte[] json;
        try
        {
            var base64 = value.Trim().Replace('-', '+').Replace('_', '/');
            json = Convert.FromBase64String(base64.PadRight(base64.Length + ((4 - (base64.Length % 4)) % 4), '='));
        }
        catch (FormatException)
        {
            problem = "it is not base64url";
            return null;
        }

        var secrets = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var ssh = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                problem = "it is not a JSON object";
                return null;
            }

            long total = 0;
            if (doc.RootElement.TryGetProperty("secrets", out var s) && s.ValueKind == JsonValueKind.Object)
            {
                foreach (var entry in s.EnumerateObject())
                {
                    if (!ValidId(entry.Name) || entry.Value.ValueKind != JsonValueKind.String || !entry.Value.TryGetBytesFromBase64(out var bytes))
                    {
                        problem = $"the secret '{(ValidId(entry.Name) ? entry.Name : "?")}' is not an id with a base64 value";
                        return null;
                    }

                    total += bytes.Length;
                    secrets[entry.Name] = bytes;
                }
            }

            if (total > MaxBytes)
            {
                problem = $"its secrets hold {total} bytes, more than the {MaxBytes} a build may pass";
                return null;
            }

            if (doc.RootElement.TryGetProperty("ssh", out var a) && a.ValueKind == JsonValueKind.Object)
            {
                foreach (var entry in a.EnumerateObject())
                {
                    if (!ValidId(entry.Name) || entry.Value.GetString() is not { Length: > 0 } path || !path.StartsWith('/'))
                    {
                        problem = $"the ssh agent '{(ValidId(entry.Name) ? entry.Name : "?")}' is not an id with an absolute socket path";
                        return null;
                    }

                    ssh[entry.Name] = path;
                }
            }
        }
        catch (JsonException)
        {
            // JsonException's message may quote the text around the error: never repeat it.
            problem = "it is not valid JSON";
            return null;
        }
        catch (InvalidOperationException)
        {
            problem = "it has a value of the wrong type";
            return null;
        }

        return new BuildSecretValues { Secrets = secrets, SshAgents = ssh };
    }

    /// <summary>Ids are names, not paths: letters, digits and <c>-_.</c>, as BuildKit's secret ids in practice.</summary>
    public static bool ValidId(string id) =>
        id is { Length: > 0 and <= 128 } && id != "." && id != ".." && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');
}
