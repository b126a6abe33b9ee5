using Farm.Coordinator.Auth;
using Microsoft.Extensions.Time.Testing;

namespace Farm.Coordinator.Tests;

/// <summary>The tokens file: what it admits, as which tenant and role, and how it refuses a bad line.</summary>
public sealed class FarmTokensTests
{
    [Fact]
    public void A_minted_token_is_admitted_by_its_line_as_its_tenant_and_role_and_nothing_else_is()
    {
        var token = FarmTokens.Mint();
        var reader = FarmTokens.Mint();
        var options = new CoordinatorAuthOptions();
        options.Tokens.Add("# a comment");
        options.Tokens.Add(FarmTokens.Line("acme", token, FarmRole.Build));
        options.Tokens.Add(FarmTokens.Line("acme", reader, FarmRole.Read) + "  # the dashboard");
        options.Tokens.Add("globex amqp:globex-ci");

        var tokens = FarmTokens.Load(options);

        Assert.True(tokens.Enabled);
        Assert.True(tokens.TryAuthenticate(token, out var entry));
        Assert.Equal(new TokenEntry("acme", FarmRole.Build), entry);
        Assert.True(tokens.TryAuthenticate(reader, out var read));
        Assert.Equal(FarmRole.Read, read.Role);
        Assert.False(tokens.TryAuthenticate(token[..^1], out _));
        Assert.False(tokens.TryAuthenticate(FarmTokens.Hash(token), out _));
        Assert.True(tokens.TryTenantOfAmqpUser("globex-ci", out var tenant));
        Assert.Equal("globex", tenant);
        Assert.False(tokens.TryTenantOfAmqpUser("guest", out _));
        Assert.StartsWith("farm_", token, StringComparison.Ordinal);
        Assert.NotEqual(token, reader);
    }

    [Fact]
    public void A_token_pasted_instead_of_its_hash_stops_the_start_without_being_echoed()
    {
        var token = FarmTokens.Mint();
        var options = new CoordinatorAuthOptions();
        options.Tokens.Add($"acme {token}");

        var e = Assert.Throws<AuthSettingsException>(() => FarmTokens.Load(options));

        Assert.StartsWith("FARM4232: ", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(token, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(token, options.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Without_tokens_auth_is_off_and_disabled_wins_over_a_tokens_file()
    {
        Assert.False(FarmTokens.Load(new CoordinatorAuthOptions()).Enabled);
        Assert.False(FarmTokens.Load(new CoordinatorAuthOptions { TokensFile = "/nonexistent", Disabled = true }).Enabled);
        var missing = Assert.Throws<AuthSettingsException>(() => FarmTokens.Load(new CoordinatorAuthOptions { TokensFile = "/nonexistent/farm-tokens" }));
        Assert.Contains("/nonexistent/farm-tokens", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_token_revoked_in_the_file_is_refused_a_second_later_and_a_broken_edit_keeps_the_tokens_before()
    {
        var dir = Directory.CreateTempSubdirectory("farm-tokens-");
        try
        {
            var (first, second) = (FarmTokens.Mint(), FarmTokens.Mint());
            var file = Path.Combine(dir.FullName, "tokens");
            File.WriteAllText(file, FarmTokens.Line("acme", first, FarmRole.Build) + "\n");
            var time = new FakeTimeProvider();
            var tokens = FarmTokens.Load(new CoordinatorAuthOptions { TokensFile = file }, time);
            Assert.True(tokens.TryAuthenticate(first, out _));

            // Revoke the first token, add a second: in force once the check period has passed.
            File.WriteAllText(file, FarmTokens.Line("acme", second, FarmRole.Read) + "\n");
            time.Advance(FarmTokens.ReloadCheckPeriod);
            Assert.False(tokens.TryAuthenticate(first, out _));
            Assert.True(tokens.TryAuthenticate(second, out var entry));
            Assert.Equal(new TokenEntry("acme", FarmRole.Read), entry);

            // A mistake while editing (a token pasted instead of its hash) does not lock everybody out.
            File.WriteAllText(file, $"acme {first}\n");
            time.Advance(FarmTokens.ReloadCheckPeriod);
            Assert.True(tokens.TryAuthenticate(second, out _));
            Assert.False(tokens.TryAuthenticate(first, out _));

            // A Kubernetes secret volume: the file is a symlink into a directory that a new one replaces.
            var mounted = Path.Combine(dir.FullName, "mounted");
            Directory.CreateDirectory(Path.Combine(dir.FullName, "v1"));
            Directory.CreateDirectory(Path.Combine(dir.FullName, "v2"));
            File.WriteAllText(Path.Combine(dir.FullName, "v1", "tokens"), FarmTokens.Line("acme", first, FarmRole.Build) + "\n");
            File.WriteAllText(Path.Combine(dir.FullName, "v2", "tokens"), FarmTokens.Line("globex", second, FarmRole.Build) + "\n");
            File.CreateSymbolicLink(Path.Combine(dir.FullName, "data"), Path.Combine(dir.FullName, "v1"));
            File.CreateSymbolicLink(mounted, Path.Combine(dir.FullName, "data", "tokens"));
            var secret = FarmTokens.Load(new CoordinatorAuthOptions { TokensFile = mounted }, time);
            Assert.True(secret.TryAuthenticate(first, out _));
            File.Delete(Path.Combine(dir.FullName, "data"));
            File.CreateSymbolicLink(Path.Combine(dir.FullName, "data"), Path.Combine(dir.FullName, "v2"));
            time.Advance(FarmTokens.ReloadCheckPeriod);
            Assert.False(secret.TryAuthenticate(first, out _));
            Assert.True(secret.TryAuthenticate(second, out var moved));
            Assert.Equal("globex", moved.Tenant);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
