using Farm.Coordinator.Auth;

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
}
