with

source as (

    select * from {{ source('shop', 'stores') }}

),

renamed as (

    select

        ----------  ids
        id as store_id,

        ---------- text
        name as store_name,
        city,

        ---------- numerics
        cast(tax_rate as double) as tax_rate,

        ---------- timestamps
        cast(opened_at as date) as opened_on

    from source

)

select * from renamed
